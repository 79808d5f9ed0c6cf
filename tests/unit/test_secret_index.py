"""The state table's secret index (``adapters/secret_index.py``) on moto's in-process DynamoDB: the
resources whose last import used a secret, and a missing table told as such."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.fakes import ROTATED_SECRET_NAME
from vercel_sync.adapters.secret_index import INDEX_NAME, DynamoDbSecretIndex
from vercel_sync.errors import TransientSyncError
from vercel_sync.rotation.events import RotationTarget


def test_the_index_lists_the_resources_whose_last_import_used_the_secret() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="state",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "secretName", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX_NAME,
                    "KeySchema": [{"AttributeName": "secretName", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )

        def put(resource: str, **attributes: str) -> None:
            item = {
                "pk": {"S": f"resource#6#icfg_1#{resource}"},
                "kind": {"S": "resource"},
                "installationId": {"S": "icfg_1"},
                "resourceId": {"S": resource},
                "status": {"S": "ready"},
            }
            item.update({name: {"S": value} for name, value in attributes.items()})
            dynamodb.put_item(TableName="state", Item=item)

        put("r1", secretName=ROTATED_SECRET_NAME, secretsPrefix="ORDERS")
        put("r2", secretName=ROTATED_SECRET_NAME)
        put("r3", secretName="partner/resources/other")
        put("r4")  # no secret: not in the sparse index
        put("r5", secretName=ROTATED_SECRET_NAME, status="uninstalled")
        dynamodb.put_item(
            TableName="state", Item={"pk": {"S": "ratelimit#icfg_1"}, "secretName": {"S": ROTATED_SECRET_NAME}}
        )

        targets = DynamoDbSecretIndex("state", dynamodb_client=dynamodb).resources_using(ROTATED_SECRET_NAME)

        assert sorted(targets) == [RotationTarget("icfg_1", "r1", "ORDERS"), RotationTarget("icfg_1", "r2", None)]
        with pytest.raises(TransientSyncError, match="ResourceNotFoundException"):
            DynamoDbSecretIndex("missing", dynamodb_client=dynamodb).resources_using(ROTATED_SECRET_NAME)
