"""What to show about one catalog model, as (label, value) rows: ``anechat models info``
and the app's models screen print the same facts."""

from __future__ import annotations

from anechat.formatting import human_bytes, human_count


def info_rows(entry) -> list[tuple[str, str]]:
    """Every fact about ``entry`` worth showing; empty values are left out."""
    rows = [
        ("name", entry.name),
        ("repo", entry.repo_id or ""),
        ("revision", entry.revision or ""),
        ("path", str(entry.path)),
        ("source", entry.source),
        ("format", entry.format),
        ("architecture", entry.architecture),
        ("parameters", f"{human_count(entry.parameters)} ({entry.parameters:,})" if entry.parameters else ""),
        ("quantization", entry.quantization),
        ("context", str(entry.context_length or "")),
        ("size on disk", human_bytes(entry.size_bytes)),
        ("engines", ", ".join(entry.engines) or "none"),
        ("convert to", ", ".join(entry.details.get("convert_to") or [])),
        ("why", entry.reason),
    ] + [("note", n) for n in entry.notes] + _quality_rows(entry)
    return [(label, value) for label, value in rows if value]


def _quality_rows(entry) -> list[tuple[str, str]]:
    """The figures ``anechat convert --check`` measured, for a Core ML folder that has them."""
    if entry.format != "coreml" or entry.path is None:
        return []
    from anechat.engines.coreml.convert.check import quality_lines, read_quality

    figures = read_quality(entry.path)
    return quality_lines(figures) if figures else []
