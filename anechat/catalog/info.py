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
    ] + _origin_rows(entry.origin) + [("note", n) for n in entry.notes] + _quality_rows(entry)
    return [(label, value) for label, value in rows if value]


def _origin_rows(origin) -> list[tuple[str, str]]:
    """Where a converted folder came from (its ``anechat-source.json``)."""
    if origin is None:
        return []
    options = ", ".join(f"{k} {v}" for k, v in origin.options.items())
    quality = ", ".join(f"{k} {v}" for k, v in origin.quality.items())
    return [
        ("made from", f"{origin.source_name} ({origin.source_path})"),
        ("converted by", f"{origin.converter} {options}".strip() if origin.converter else options),
        ("converted on", origin.created),
        ("quality", quality),
    ]


def _quality_rows(entry) -> list[tuple[str, str]]:
    """The figures ``anechat convert --check`` measured, for a Core ML folder that has them."""
    if entry.format != "coreml" or entry.path is None:
        return []
    from anechat.engines.coreml.convert.check import quality_lines, read_quality

    figures = read_quality(entry.path)
    return quality_lines(figures) if figures else []
