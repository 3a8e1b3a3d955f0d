"""IAM policy simulation for the local moto, which lacks it: SimulatePrincipalPolicy and
SimulateCustomPolicy (simulator.py) over a policy evaluator (policy_eval.py) with AWS's condition
operators (conditions.py) and wildcard matching (patterns.py).
"""
