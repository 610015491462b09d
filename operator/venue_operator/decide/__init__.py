"""decide, pure: an assessment + history + policy -> at most one action, with its reason.

procedure.decide() asks the runbook's rules (rules.py) in order, under the guardrails
(guardrails.py); a rollback's target and refusals are in rollback_target.py, the rollout's
facts in rollout.py, the vocabulary (Action, Decision) in decision.py; capacity.py plans a
scale-up and its restore, gitops.py knows the controllers that re-apply a Deployment.
"""
