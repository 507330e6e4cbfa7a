"""Local stand-in for the Stripe API subset MimiVibe uses, with signed webhook delivery.

    app = create_app(StripeStandinSettings(api_key=..., webhook_secret=..., webhook_url=...))
    with ServerThread(app) as server:
        client = stripe.StripeClient(api_key, base_addresses={"api": server.url})
"""

from devstack.stripe_standin.app import Standin, create_app
from devstack.stripe_standin.client import StandinControl
from devstack.stripe_standin.settings import StripeStandinSettings
from devstack.stripe_standin.signing import compute_signature, signature_header

__all__ = [
    "Standin",
    "StandinControl",
    "StripeStandinSettings",
    "compute_signature",
    "create_app",
    "signature_header",
]
