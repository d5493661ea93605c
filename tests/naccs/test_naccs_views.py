"""The NACCS office page reads set-based: the office, its IDs, terminals, notices and
applications with the IDs they issued cost the same statements for one application as for
three, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import tokyo
from tests.coupons.test_coupon_views import statements_of
from tests.naccs.test_naccs import APPROVE, center, office, submit_codes

PAGE = """{ naccsOffice { name userIds { userId netNaccs } terminals { name expiresOn } notices { category }
  applications { receiptNumber state formPdfUrl approvalNoticePdfUrl idNotice { userId password } } } }"""


def test_an_office_with_three_approved_applications_costs_the_statements_of_one(live):
    def approved_application():
        live.clock.set(tokyo(2026, 11, 20, 10, 0))
        submitted = submit_codes(live, office(live))
        assert submitted["errors"] == [], submitted
        live.clock.set(tokyo(2026, 11, 30, 15, 0))
        approved = live.graphql(APPROVE, {"id": submitted["application"]["id"], "d": "2026-12-08"},
                                headers=center(live)).json()["data"]["approveUserCodeApplication"]
        assert approved["errors"] == [], approved

    def page():
        headers = office(live)
        with statements_of(live) as seen:
            data = live.graphql(PAGE, headers=headers).json()["data"]["naccsOffice"]
        for app in data["applications"]:  # inside the password window: every issued ID shows its password
            assert len(app["idNotice"]) == 3 and all(n["password"] and len(n["password"]) == 12 for n in app["idNotice"])
            assert app["approvalNoticePdfUrl"] is None  # before the start date
        return len(data["applications"]), sorted(seen)

    approved_application()
    one, one_statements = page()
    approved_application()
    approved_application()
    three, three_statements = page()
    assert (one, three) == (1, 3)
    assert one_statements == three_statements, (one_statements, three_statements)
    assert sum(s.startswith("SELECT naccs_user_ids") for s in three_statements) == 2  # the office's IDs, the issued ones
