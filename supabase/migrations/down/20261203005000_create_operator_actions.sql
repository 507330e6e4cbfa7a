drop table private.operator_actions;
drop function private.operator_actions_append_only();
