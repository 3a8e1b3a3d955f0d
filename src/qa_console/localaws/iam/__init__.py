"""IAM policy simulation for the local moto, which lacks it: SimulatePrincipalPolicy and
SimulateCustomPolicy (simulator.py) over the policy evaluator of qa_console.ops.iam
(evaluate.py, conditions.py, patterns.py), the one the IAM preflight also evaluates with.
"""
