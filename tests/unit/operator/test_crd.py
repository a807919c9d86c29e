"""The chart ships the operator's SliceClaim CRD unchanged."""

from pathlib import Path

from slicebroker.operator.main import crd_manifest

ROOT = Path(__file__).resolve().parents[3]


def test_chart_crd_is_the_operators() -> None:
    chart = ROOT / "helm" / "slicebroker" / "crds" / "sliceclaims.yaml"
    operator = ROOT / "clients" / "slicebroker" / "operator" / "sliceclaims.crd.yaml"
    assert chart.read_text() == operator.read_text()
    columns = [c["name"] for c in crd_manifest()["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:5] == ["SKU", "Count", "State", "Node", "Expires"]
