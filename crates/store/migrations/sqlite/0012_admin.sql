-- The console's audit page: the workspace's log newest first, optionally of one action.
CREATE INDEX audit_log_workspace_idx ON audit_log (workspace_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (workspace_id, action, id);
