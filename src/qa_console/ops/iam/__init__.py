"""The IAM preflight of a deployment, and the IAM policy semantics it rests on.

    facts.py         DeploymentFacts: what a deploy is about to create and use (the deploy fills
                     it in; `deployment_facts` builds it from the settings)
    requirements.py  every (action, resource, context) the caller and the roles need
    identity.py      who is calling (sts), as the principal the simulator accepts
    check.py         check_deployment: each principal simulated, else evaluated locally, else
                     unknown; the verdicts as rows
    simulate.py      SimulatePrincipalPolicy in batches (one call per service and context)
    trust.py         the role's trust policy, read and evaluated for the service that assumes it
    principals.py    a user's or role's own policies, fetched for local evaluation
    report.py        IamReport: allowed / denied / unknown rows, and how each was checked
    fix.py           the minimal policies granting what is denied, scoped to the real ARNs
    role.py          create (and delete) an execution role with exactly the role policy
    evaluate.py      the IAM policy evaluator (Allow/Deny, NotAction/NotResource, boundaries,
                     resource policies), with conditions.py (the condition operators) and
                     patterns.py (wildcards, ARNs, policy variables); the embedded local AWS
                     answers SimulatePrincipalPolicy with the same engine

A deploy runs it as:

    identity = caller_identity(target)
    report = check_deployment(target, facts, identity=identity)
    report.raise_if_denied()        # AuthError listing the denied rows; unknown rows pass
"""
