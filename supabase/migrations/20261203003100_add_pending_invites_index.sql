-- Pending invites of an inviter, for wallet_summary's pending count (status pending and not
-- past expires_at): an index range over that inviter's pending invites only, instead of reading
-- every invite the inviter ever sent and filtering.

create index user_invites_inviter_pending_idx on public.user_invites (inviter_id, expires_at)
  where status = 'pending';
