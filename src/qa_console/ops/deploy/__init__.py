"""Deploying a model to a SageMaker endpoint:

    flow.py      deploy_model: package/upload/check the model, IAM preflight, plan, roll out
    plan.py      names, the container image, the size and cost, the exact boto3 requests
    pricing.py   memory need, the instance table, the cheapest fit within a budget, serverless
    rollout.py   create or blue/green update, wait through Creating, warm up, roll back
    diagnose.py  the likely cause of an endpoint that failed
    status.py    what an endpoint is, serves and costs

Teardown of what a deploy created is ops/teardown.py (it also removes what expose created).
"""
