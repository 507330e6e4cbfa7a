"""Provider token verification (Clerk, Auth0, Firebase, custom). PyJWT is imported here only."""

from shared.identity.config import build_identity_verifier
from shared.identity.models import Provider, VerifiedIdentity
from shared.identity.verifier import IdentityVerifier

__all__ = [
    "IdentityVerifier",
    "Provider",
    "VerifiedIdentity",
    "build_identity_verifier",
]
