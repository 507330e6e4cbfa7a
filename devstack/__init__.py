"""Local stand-ins for the hosted services (Supabase, Upstash, Stripe, QStash) and the stack runner."""
