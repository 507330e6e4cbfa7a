"""Local stand-in for Upstash QStash v2: publish, schedules, signed deliveries with retries.

The real `qstash` client works against it unchanged: `QStash(token, base_url=server.url)`.
"""

from devstack.qstash_standin.app import create_app
from devstack.qstash_standin.settings import QStashStandinSettings

__all__ = ["QStashStandinSettings", "create_app"]
