"""What a checker returns: {"valid": bool, "details": {...}}.

details always has "summary" (one line for a person) and, when something is wrong,
"anomalies": a list of {"type": name, "explanation": text, "ops": [op descriptions], ...}
(at most LIMIT per type are kept; "anomaly_counts" has the full counts).
"""

LIMIT = 20


class Anomalies:
    """Collects anomalies by type, keeping the first LIMIT of each type."""

    def __init__(self, limit=LIMIT):
        self.limit = limit
        self.items = []
        self.counts = {}

    def add(self, type_, explanation, ops=(), **extra):
        n = self.counts.get(type_, 0)
        self.counts[type_] = n + 1
        if n < self.limit:
            item = {"type": type_, "explanation": explanation,
                    "ops": [o if isinstance(o, dict) else o.describe() for o in ops]}
            item.update(extra)
            self.items.append(item)

    def __bool__(self):
        return bool(self.counts)

    def types(self):
        return sorted(self.counts)


def outcome(anomalies, summary, **extra):
    """A checker's result: valid when no anomaly was found."""
    details = {"summary": summary}
    details.update(extra)
    if anomalies:
        details["anomaly_counts"] = dict(sorted(anomalies.counts.items()))
        details["anomalies"] = anomalies.items
        details["summary"] = (summary + "; " + ", ".join(
            f"{n} {t}" for t, n in sorted(anomalies.counts.items())))
    return {"valid": not anomalies, "details": details}


def nothing(what):
    """The result of a check that had nothing to check: valid, and says so."""
    return {"valid": True, "details": {"summary": f"nothing to check: {what}",
                                       "nothing_to_check": True}}


def invalid(summary, **extra):
    details = {"summary": summary}
    details.update(extra)
    return {"valid": False, "details": details}
