"""Source builds: a Node or Python folder built without a Dockerfile (issue 17)."""
