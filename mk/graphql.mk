# GraphQL (consumer/graphql.py): the committed schema snapshot; tests/unit/test_graphql_schema.py fails when
# the schema in the code and consumer/schema.graphql differ, so a change to the schema is a reviewed diff.

.PHONY: graphql-schema
graphql-schema: ## rewrite consumer/schema.graphql from the code (commit it with the change that made it)
	$(PY) -m consumer.graphql > consumer/schema.graphql.tmp && mv consumer/schema.graphql.tmp consumer/schema.graphql
