"""The audit log, shared by the admin API and the drop folder: see ``host/registry/audit.py``."""

from ..registry.audit import MAX_DETAIL, AuditLog, operation_label

__all__ = ["MAX_DETAIL", "AuditLog", "operation_label"]
