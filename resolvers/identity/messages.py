"""Words of identity a user reads: the sub-ID notice mail and the field labels of
registrations and sub-IDs. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words

# eco-sub-id: the notice's default subject and body are policy (rules/mail_templates.yaml,
# subaccount.notice and subaccount.notice_essentials); the signer may edit both, same placeholders.
EXPIRES_AT_FORMAT: Final = "%Y-%m-%d %H:%M JST"

# field labels (the {label} of an error message)
SUBJECT: Final = Words("件名", "Subject")
BODY: Final = Words("本文", "Body")
REGISTRATION_NAME: Final = Words("名称", "Name")
CONTACT_EMAIL: Final = Words("連絡担当者E-mail", "Contact person's e-mail")
ADMIN_NAME: Final = Words("管理者名", "Administrator's name")
ADMIN_EMAIL: Final = Words("管理者E-mail", "Administrator's e-mail")
PERSON_NAME: Final = Words("氏名", "Name")
REASON: Final = Words("理由", "Reason")
USERNAME: Final = Words("ID", "ID")
PURCHASE_METHODS: Final = Words("購入方法", "Payment methods")
USERNAME_TAKEN: Final = Words("ID(既に使われています)", "ID (already taken; choose another)")
