from __future__ import annotations

import scaleapi
from scaleapi.tasks import TaskType

from tests.conftest import LiveServer, Org


def test_scaleapi_client_round_trip(server: LiveServer, org: Org) -> None:
    client = scaleapi.ScaleClient(org.test_key, source="pytest", api_instance_url=server.v1)
    project = client.create_project(
        "p1", TaskType.ImageAnnotation, params={"instruction": "Box cars"}
    )
    assert project.name == "p1"
    assert client.get_project("p1").version == 0
    task = client.create_task(
        TaskType.ImageAnnotation,
        project="p1",
        attachment="https://example.com/car.jpg",
        geometries={"box": {"objects_to_annotate": ["car"]}},
    )
    assert task.status == "completed"
