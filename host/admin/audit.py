"""The audit log, shared by the admin API and the drop folder: see ``host/registry/audit.py``."""

from ..registry.audit import MAX_DETAIL, AuditLog, operation_label

#: records ``GET /_admin/audit`` returns when the call names no limit
DEFAULT_AUDIT_LIMIT = 50
#: the most records one ``GET /_admin/audit`` returns
MAX_AUDIT_LIMIT = 1000

__all__ = ["DEFAULT_AUDIT_LIMIT", "MAX_AUDIT_LIMIT", "MAX_DETAIL", "AuditLog", "operation_label"]
