"""schema/schema.graphql is the exported truth; the contract's names (docs/api.md) must be in it."""

from __future__ import annotations

from schema import SDL_PATH, sdl


def test_the_checked_in_schema_matches_the_code():
    assert SDL_PATH.read_text(encoding="utf-8") == sdl(), (
        "schema/schema.graphql is out of date: run `make schema` and commit the result"
    )


def test_the_fee_contract_of_api_md_is_in_the_schema():
    text = sdl()
    for line in (
        "feeSchedule(on: Date",
        "applicationFee(membership: Membership!): Int!",
        "couponProducts(membership: Membership!): [CouponProduct!]!",
        "registrationFee(kind: RegistrationKind!, membership: Membership!): Int\n",
        "rulesVersion: String!",
        "faceValue: Int!",
        "tax: Int!",
    ):
        assert line in text, line
    for enum_value in ("MEMBER", "NON_MEMBER", "APPLICANT", "AGENT"):
        assert f"  {enum_value}\n" in text
