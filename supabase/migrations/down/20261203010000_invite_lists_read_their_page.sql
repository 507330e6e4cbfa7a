drop policy user_invites_select_own on public.user_invites;

create policy user_invites_select_own on public.user_invites
  for select to authenticated
  using (inviter_id = (select auth.uid()) or invitee_id = (select auth.uid()));
