"""The producer: brings articles from sources into Kafka (`news.raw`)."""
