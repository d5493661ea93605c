"""Words of webhooks a user reads: field labels, states, and what a failed delivery records."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words

# field labels (the {label} of an error message)
URL: Final = Words("URL", "URL")
URL_HTTPS: Final = Words("URL(https://、2048文字以内、ユーザー名・パスワードを含まない)",
                         "URL (https://, at most 2048 characters, no user name or password)")
URL_NOT_ALLOWED: Final = Words(
    "URL(送信先のホストがプライベート・ループバック・リンクローカル等のアドレスです。インターネットから到達できるホストを指定してください)",
    "URL (the host is or resolves to a private, loopback, link-local or otherwise internal address; "
    "use a host reachable from the internet)")
URL_UNRESOLVED: Final = Words("URL(ホスト名を解決できません)", "URL (the host name does not resolve)")
EVENTS: Final = Words("イベント", "Events")
ENDPOINTS: Final = Words("Webhookの送信先", "Webhook endpoints")

# states (INVALID_STATE's {state})
ENDPOINT_DELETED: Final = Words("削除済みの送信先", "a deleted endpoint")

# webhook_deliveries.last_error (read by the registration's developers and by staff)
DESTINATION_NOT_ALLOWED: Final = "destination not allowed"
ENDPOINT_DELETED_ERROR: Final = "endpoint deleted"
RETRY_PERIOD_OVER: Final = "gave up: the retry period is over"
SECRET_UNREADABLE: Final = "the endpoint's secret cannot be unsealed (its key is no longer in TRADECERT_NACCS_KEY_FILE)"
