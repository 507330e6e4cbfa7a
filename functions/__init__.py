"""One package per Lambda function (serverless.yml). The runtime imports this package before any
handler module: in AWS that is where the function's secret is loaded (shared/secrets.py)."""

from shared.secrets import load_at_cold_start

load_at_cold_start()
