"""Free text of the synthetic world: failure reasons, lessons and logs that follow the cause.

Every message carries variable parts (hosts, counts, seconds, table names) the way real
gateway logs do, so a failure-reason normalizer has real work to do: the *template* of the
message identifies the cause, the numbers do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from deploylearn.synthetic.catalogue import KNOB_INDEX

TABLES = ("batch_records", "recipe_steps", "oee_events", "downtime_log", "quality_samples",
          "work_orders", "shift_reports")
MODULES = ("Perspective", "Vision", "Tag Historian", "Alarm Notification", "Reporting",
           "OPC UA", "SQL Bridge", "WebDev")
ERRORS = ("java.lang.NullPointerException", "java.util.concurrent.TimeoutException",
          "com.inductiveautomation.ignition.common.GenericTransferrableException",
          "java.io.IOException: Broken pipe")
PROVIDERS = ("default", "edge", "plc_line1", "plc_line2", "mes_tags")

# A context row: (host, strategy, deployment_type, resources, knob row, random int, predecessor)
Ctx = tuple[str, str, str, tuple[str, ...], Sequence[float], int, str]
_VT, _CP, _BS = KNOB_INDEX["validation_timeout"], KNOB_INDEX["canary_percent"], KNOB_INDEX[
    "batch_size"]
_STD, _HCI = KNOB_INDEX["switch_traffic_delay"], KNOB_INDEX["health_check_interval"]
_RT, _TO = KNOB_INDEX["rollback_threshold"], KNOB_INDEX["timeout"]


def _plant(host: str) -> str:
    return host.split(".", 1)[1].split(".", 1)[0] if "." in host else "plant-a"


def _strategy(c: Ctx) -> str:
    host, strategy, _, _, _, r, _ = c
    if strategy == "direct":
        return f"Direct deployment restarted gateway {host}: {5 + r % 60} client sessions dropped"
    return f"{strategy} rollout aborted on {host}: {1 + r % 3} of {4 + r % 3} stages incomplete"


def _dtype(c: Ctx) -> str:
    host, _, dtype, _, _, r, _ = c
    if dtype == "upgrade":
        return (f"Module upgrade failed on {host}: {MODULES[r % len(MODULES)]} "
                f"8.1.{30 + r % 18} signature mismatch")
    if dtype == "hotfix":
        return f"Hotfix verification failed: {1 + r % 9} regression checks failing on {host}"
    if dtype == "migration":
        return f"Migration step {1 + r % 6}/7 failed: {TABLES[r % len(TABLES)]} not found"
    return f"Deployment {dtype} failed on {host}: {ERRORS[r % len(ERRORS)]}"


def _ssl(c: Ctx) -> str:
    host, _, _, res, _, r, _ = c
    if "opc_ua_connection" in res and r % 2:
        return (f"OPC UA secure channel rejected: Bad_CertificateUntrusted on "
                f"opc.tcp://plc-{r % 40:02d}.{_plant(host)}.local:4840")
    return f"SSL handshake failed with {host}:8060: PKIX path building failed"


def _other_resource(c: Ctx) -> str:
    host, _, _, res, _, r, _ = c
    return f"Resource {res[r % len(res)]} failed to load on {host}: {ERRORS[r % len(ERRORS)]}"


def _upgrade(c: Ctx) -> str:
    host, _, _, res, _, r, _ = c
    if "perspective" in res:
        return (f"Perspective session migration failed after Ignition 8.3 upgrade: "
                f"{3 + r % 80} sessions dropped on {host}")
    if "vision" in res:
        return f"Vision client launch failed after Ignition 8.3 upgrade on {host}: {r % 30} clients"
    return f"Module compatibility check failed after Ignition 8.3 upgrade on {host}"


def _generic(c: Ctx) -> str:
    host, _, _, _, _, r, _ = c
    kind = r % 3
    if kind == 0:
        return f"Unexpected error: {ERRORS[r % len(ERRORS)]} in {MODULES[r % len(MODULES)]} module"
    if kind == 1:
        return f"Gateway {host} restart took {120 + r % 480}s, longer than allowed"
    return (f"Tag provider {PROVIDERS[r % len(PROVIDERS)]} failed to restart: "
            f"{10 + r % 990} tags in error state")


REASONS: dict[str, Callable[[Ctx], str]] = {
    "strategy_fit": _strategy,
    "deployment_type": _dtype,
    "res_database": lambda c: (
        f"Database connection pool exhausted on db-{_plant(c[0])}.local: "
        f"{20 + c[5] % 80} active connections"
    ),
    "res_historian": lambda c: (
        f"Historian store-and-forward quarantined {100 + c[5] % 9900} records on {c[0]}"
    ),
    "res_opc": lambda c: (
        f"OPC UA connection opc.tcp://plc-{c[5] % 40:02d}.{_plant(c[0])}.local:4840 "
        f"faulted: Bad_Timeout"
    ),
    "res_other": _other_resource,
    "db_no_backup": lambda c: (
        f"Database migration failed: schema lock timeout on {TABLES[c[5] % len(TABLES)]} "
        f"after {30 + c[5] % 270}s"
    ),
    "historian_no_backup": lambda c: (
        f"Historian partition sqlth_{1 + c[5] % 60}_data corrupted during update; "
        f"no backup to restore"
    ),
    "validation_timeout": lambda c: (
        f"Validation timed out after {int(c[4][_VT])}s "
        f"({c[5] % len(c[3])}/{len(c[3])} resources verified)"
    ),
    "ssl": _ssl,
    "audit": lambda c: (
        f"Audit policy check failed: audit logging disabled on production gateway {c[0]}"
    ),
    "security_policy": lambda c: (
        f"Security policy check failed on {c[0]}: policy 'standard' not allowed "
        f"(strict required)"
    ),
    "connection_timeout": lambda c: f"Connection to {c[0]}:8060 timed out after {int(c[4][_TO])}s",
    "canary": lambda c: (
        f"Canary at {int(c[4][_CP])}% exceeded error budget: "
        f"{2 + (c[5] % 180) / 10:.1f}% failed requests"
    ),
    "batch_size": lambda c: (
        f"Rolling batch of {int(c[4][_BS])} gateways took redundant pair of {c[0]} offline"
    ),
    "switch_delay": lambda c: (
        f"Traffic switched after {int(c[4][_STD])}s before green gateway warmed up: "
        f"{10 + c[5] % 500} tag subscriptions stale"
    ),
    "health_check": lambda c: (
        f"Degradation detected late on {c[0]}: health check interval {int(c[4][_HCI])}s, "
        f"{1 + c[5] % 20} alarms missed"
    ),
    "rollback_threshold": lambda c: (
        f"Health score {c[4][_RT] + 0.01 + (c[5] % 8) / 100:.2f} stayed above rollback "
        f"threshold {c[4][_RT]:g}; deployment left degraded"
    ),
    "skipped_promotion": lambda c: (
        f"Change not validated in {c[6]}: {c[3][c[5] % len(c[3])]} version mismatch on {c[0]}"
    ),
    "shift_hours": lambda c: (
        f"Operator sessions interrupted during running shift on {c[0]}: "
        f"{2 + c[5] % 40} clients reconnected"
    ),
    "gateway": lambda c: f"Gateway {c[0]} unreachable after {3 + c[5] % 3} retries",
    "upgrade_drift": _upgrade,
    "generic": _generic,
}

LESSONS: dict[str, str] = {
    "strategy_fit": "Avoid direct restarts on production gateways; use blue-green or canary.",
    "deployment_type": "Rehearse this kind of change in staging first.",
    "res_database": "Check connection pool limits before database deployments.",
    "res_historian": "Drain store-and-forward before touching the historian.",
    "res_opc": "Verify PLC connectivity before deploying OPC UA changes.",
    "res_other": "Validate resource exports before import.",
    "db_no_backup": "Always enable backups before database deployments.",
    "historian_no_backup": "Back up historian partitions before updates.",
    "validation_timeout": "Raise validation_timeout for multi-resource deployments.",
    "ssl": "Enable SSL certificate validation for production.",
    "audit": "Production requires audit logging.",
    "security_policy": "Use the strict security policy in production.",
    "connection_timeout": "Increase connection timeouts for production gateways.",
    "canary": "Keep canary percentage small (10-15%).",
    "batch_size": "Never roll more than two production gateways at once.",
    "switch_delay": "Give the green gateway at least a minute before switching traffic.",
    "health_check": "Shorter health check interval in production.",
    "rollback_threshold": "Keep rollback threshold at 0.9 or above in production.",
    "skipped_promotion": "Do not skip staging.",
    "shift_hours": "Deploy production during maintenance windows.",
    "gateway": "Check gateway health before deploying.",
    "upgrade_drift": "Re-test Perspective and Vision resources after the 8.3 upgrade.",
    "generic": "Investigate gateway logs.",
}

SUCCESS_LESSONS = (
    "Smooth deployment; template worked as expected.",
    "Pre-deployment backup took longer than the deployment itself.",
    "Green gateway warm-up made the switch invisible to operators.",
)


def health_reason(host: str, r: int) -> str:
    """A follow-on symptom that often accompanies the root cause."""
    return f"Post-deployment health check failed on {host}: {r % 4}/{4 + r % 3} checks passing"


def rollback_reason(host: str, resources: tuple[str, ...], r: int) -> str:
    """Why a rollback itself did not restore the previous state."""
    return f"Rollback incomplete: restore of {resources[r % len(resources)]} failed on {host}"
