"""The Pod Security Standards' "restricted" level, checked offline on a pod spec: every control
the standard lists for the Baseline and Restricted profiles
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), as the admission
controller applies it to a pod template. Returns what violates it, in the standard's words."""

from __future__ import annotations

from typing import Any

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})


def restricted_violations(
    pod: dict[str, Any], annotations: dict[str, str] | None = None
) -> list[str]:
    """What in the pod spec `pod` breaks the restricted level; empty when nothing does."""
    found: list[str] = []
    pod_context = pod.get("securityContext") or {}
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"host namespaces: {field} must be unset or false")
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        found.append("HostProcess: pod windowsOptions.hostProcess must be unset or false")
    found += _selinux("pod", pod_context)
    found += _seccomp_and_apparmor("pod", pod_context)
    for sysctl in pod_context.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctls: {sysctl.get('name')} is not in the safe set")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"AppArmor: annotation {key}={value}")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            found.append(f"HostPath volumes: volume {volume['name']}")
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume types: volume {volume['name']} is {sorted(kinds)}")
    pod_non_root = pod_context.get("runAsNonRoot") is True
    pod_seccomp = ((pod_context.get("seccompProfile") or {}).get("type")) in SECCOMP_ALLOWED
    if pod_context.get("runAsUser") == 0:
        found.append("running as non-root user: pod runAsUser must not be 0")
    for container in containers:
        name = f"container {container['name']}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"privileged containers: {name} is privileged")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"HostProcess: {name}")
        for port in container.get("ports", []):
            if port.get("hostPort", 0):
                found.append(f"host ports: {name} uses hostPort {port['hostPort']}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"/proc mount type: {name} must use the Default procMount")
        found += _selinux(name, context)
        found += _seccomp_and_apparmor(name, context)
        capabilities = context.get("capabilities") or {}
        added = set(capabilities.get("add", []))
        if not added <= BASELINE_CAPABILITIES:
            found.append(f"capabilities: {name} adds {sorted(added - BASELINE_CAPABILITIES)}")
        if not added <= {"NET_BIND_SERVICE"}:
            found.append(
                f"capabilities: {name} may add only NET_BIND_SERVICE, adds {sorted(added)}"
            )
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"capabilities: {name} must drop ALL")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"privilege escalation: {name} must set allowPrivilegeEscalation: false")
        non_root = context.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            found.append(f"running as non-root: {name} (or the pod) must set runAsNonRoot: true")
        if context.get("runAsUser") == 0:
            found.append(f"running as non-root user: {name} runAsUser must not be 0")
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if not (seccomp in SECCOMP_ALLOWED or (seccomp is None and pod_seccomp)):
            found.append(f"seccomp: {name} (or the pod) must use RuntimeDefault or Localhost")
    return found


def _selinux(where: str, context: dict[str, Any]) -> list[str]:
    options = context.get("seLinuxOptions") or {}
    problems = []
    if options.get("type", "") not in SELINUX_TYPES:
        problems.append(f"SELinux: {where} type {options['type']}")
    if options.get("user") or options.get("role"):
        problems.append(f"SELinux: {where} must not set user or role")
    return problems


def _seccomp_and_apparmor(where: str, context: dict[str, Any]) -> list[str]:
    problems = []
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append(f"seccomp: {where} must not be Unconfined")
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in APPARMOR_ALLOWED:
        problems.append(f"AppArmor: {where} profile {apparmor}")
    return problems
