-- The app's invite list sent by the caller (`?inviter_id=eq.<me>&order=created_at.desc`) reads
-- its page from user_invites_inviter_idx instead of every invite the caller sent: with the
-- caller's id as an InitPlan (`(select auth.uid())`) the planner merges the list's filter into
-- the policy's OR and answers with a BitmapOr and a sort of all the caller's invites; with
-- `auth.uid()` called in place (stable, so one value per statement: the same rows are visible)
-- it walks the index in created_at order and checks the policy on the rows of the page.
drop policy user_invites_select_own on public.user_invites;

create policy user_invites_select_own on public.user_invites
  for select to authenticated
  using (inviter_id = auth.uid() or invitee_id = auth.uid());
