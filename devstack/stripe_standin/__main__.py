"""Run the Stripe stand-in on its own: `python -m devstack.stripe_standin --port 12111`.

The API key and signing secret come from STRIPE_STANDIN_API_KEY and
STRIPE_STANDIN_WEBHOOK_SECRET (never printed); the webhook URL from --webhook-url or
STRIPE_STANDIN_WEBHOOK_URL."""

from __future__ import annotations

import argparse
import os

import uvicorn

from devstack.ports import free_port
from devstack.stripe_standin.app import create_app
from devstack.stripe_standin.settings import StripeStandinSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=os.environ.get("STRIPE_STANDIN_WEBHOOK_URL"))
    args = parser.parse_args()
    api_key = os.environ.get("STRIPE_STANDIN_API_KEY")
    webhook_secret = os.environ.get("STRIPE_STANDIN_WEBHOOK_SECRET")
    if not api_key or not webhook_secret:
        parser.error("set STRIPE_STANDIN_API_KEY and STRIPE_STANDIN_WEBHOOK_SECRET")
    settings = StripeStandinSettings(api_key=api_key, webhook_secret=webhook_secret,
                                     webhook_url=args.webhook_url)
    port = free_port(args.port)
    print(f"Stripe stand-in at http://127.0.0.1:{port} (STRIPE_API_BASE)", flush=True)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
