"""The actions the code asks permission for (rules/permissions.yaml names them).

A leaf: rules/policy.py checks the rule rows against it, rules/permissions.py answers."""

from __future__ import annotations

# The actions the code asks about. A rule row naming another action is a typo.
ACTIONS = frozenset(
    {
        "account.view_self",           # me
        "account.change_own_password",  # changePassword
        "account.reset_password",       # resetAccountPassword
        "subaccount.create",            # createSubAccount
        "subaccount.view",              # subAccounts
        "subaccount.manage",            # update / notify / delete a sub-ID
        "registration.create",          # chamber staff
        "registration.renew",
        "registration.withdraw",       # 退会 (chamber staff)
        "signer.add",
        "api_key.create",              # createApiKey: a key for the actor itself
        "api_key.view",                # apiKeys, node: own keys; a registration's admin: all of its registration
        "api_key.revoke",              # revokeApiKey: the same reach as api_key.view
        "audit.view",
        "rules.diff",                  # rulesDiff: what changed in the rule files (chamber staff)
        "rules.history",               # rulesVersions: the rules versions that went live (chamber staff)
        "graphql.untrusted_document",  # run a document outside TRADECERT_TRUSTED_DOCUMENTS where GraphiQL is on
        "coupon.purchase",
        "coupon.view",
        "coupon.adjust",
        "payment.check",             # record bank deposits, check an order's payment by hand
        "application.create",
        "application.view",
        "application.edit",
        "application.pay",
        "application.review",
        "naccs.apply",
        "naccs.view",                  # a NACCS application (node, its PDF)
        "naccs.review",
        "webhook.manage",              # createWebhookEndpoint, deleteWebhookEndpoint, enableWebhookEndpoint, redeliverWebhook
        "webhook.view",                # webhookEndpoints, webhookDeliveries
    }
)
