"""permissions.yaml decides: editing it changes what the live API allows."""

from __future__ import annotations

import asyncio

from tests.identity.test_identity_sessions import login
from tests.identity.test_subaccounts import CREATE, SUB_PASSWORD, as_user


async def test_a_wrong_rule_in_the_rules_file_flips_the_api_answer(live):
    admin = as_user(live, "admin-2701000002")
    signer = as_user(live, "signer-2701000002")
    variables = {"name": "山田 花子", "password": SUB_PASSWORD, "email": "hanako@kakogawa.example"}
    assert live.graphql(CREATE, variables, headers=admin).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(CREATE, variables, headers=signer).json()["data"]["createSubAccount"]["errors"] == []

    path = live.rules_dir / "permissions.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(
        original.replace(
            "      - {action: subaccount.create, kind: SIGNER, registration: APPLICANT, relation: none}",
            "      - {action: subaccount.create, kind: ADMIN, registration: APPLICANT, relation: none}",
        ),
        encoding="utf-8",
    )
    outcome = await asyncio.to_thread(live.services.rules.reload)
    assert outcome.changed

    assert live.graphql(CREATE, variables, headers=admin).json()["data"]["createSubAccount"]["errors"] == []
    assert live.graphql(CREATE, variables, headers=signer).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_invalid_permissions_file_is_refused_and_the_old_matrix_stays(live):
    path = live.rules_dir / "permissions.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("action: subaccount.create", "action: subaccount.craete"), encoding="utf-8")
    outcome = await asyncio.to_thread(live.services.rules.reload)
    assert not outcome.changed
    assert any("unknown action 'subaccount.craete'" in p for p in outcome.problems)
    signer = as_user(live, "signer-2701000002")
    variables = {"name": "山田 花子", "password": SUB_PASSWORD, "email": "hanako@kakogawa.example"}
    assert live.graphql(CREATE, variables, headers=signer).json()["data"]["createSubAccount"]["errors"] == []
    assert login(live, "signer-2701000002")["errors"] == []
