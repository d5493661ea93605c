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
# INVALID_CREDENTIALS of activateSubAccount (its form asks for the sub-ID and password only)
SUB_ID_OR_PASSWORD_WRONG: Final = Words("サブIDまたはパスワードが正しくありません。", "The sub-ID or password is not correct.")

# API keys (issue 14): what a key may not do, and the labels of its fields
NOT_WITH_API_KEY: Final = Words("APIキーでは{doing}できません。IDとパスワードでログインしたセッションで行ってください。",
                                "An API key cannot {doing}; log in with the ID and password and do it in that session.")
CREATE_API_KEYS: Final = Words("APIキーの作成は", "create API keys")
CHANGE_PASSWORDS: Final = Words("パスワードの変更は", "change passwords")
MANAGE_SUB_IDS: Final = Words("サブIDの管理は", "manage sub-IDs")
LOG_OUT: Final = Words("ログアウトは", "log out (it has no session; revoke the key instead)")
API_KEY_NAME: Final = Words("キーの名前", "Key name")
API_KEY_EXPIRY: Final = Words("有効期限(現在より後の日時)", "Expiry (a time in the future)")
LIVE_API_KEYS: Final = Words("有効なAPIキー(不要なキーを失効させてください)", "Live API keys (revoke one you no longer use)")
