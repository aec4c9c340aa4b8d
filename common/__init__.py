"""Shared contract between the services: schemas, settings, topics, Kafka/Redis helpers, metrics, errors."""
