"""The consumer: stores analysed articles in Redis and serves them over REST and WebSocket."""
