"""Creates what examples/etl/state-machines/etl.asl.json reads and writes, with boto3:
the Orders table holding ORD-00000.. ORD-<N-1>, the order-exports topic, the shipping
queue, and two audit queues: one subscribed to the topic, one the target of an
EventBridge rule for the workflow's OrderExported events.

    python setup.py [ENDPOINT_URL] [ORDERS]     (default http://127.0.0.1:5000, 20)
"""
import json
import sys

import boto3

endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
orders = int(sys.argv[2]) if len(sys.argv) > 2 else 20


def client(name):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


ddb, sns, sqs, events = client("dynamodb"), client("sns"), client("sqs"), client("events")
ddb.create_table(TableName="Orders", BillingMode="PAY_PER_REQUEST",
                 KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}])
for i in range(orders):
    ddb.put_item(TableName="Orders", Item={
        "orderId": {"S": f"ORD-{i:05}"}, "customer": {"S": f"C-{i % 7}"},
        "total": {"N": str(10 + i * 1.5)}})


def queue_arn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


topic = sns.create_topic(Name="order-exports")["TopicArn"]
sqs.create_queue(QueueName="shipping")
notified = sqs.create_queue(QueueName="notified")["QueueUrl"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(notified))
announced = sqs.create_queue(QueueName="announced")["QueueUrl"]
events.put_rule(Name="order-exported", EventPattern=json.dumps(
    {"source": ["shop.etl"], "detail-type": ["OrderExported"]}))
events.put_targets(Rule="order-exported", Targets=[{"Id": "audit", "Arn": queue_arn(announced)}])
print(json.dumps({"orders": orders, "topic": topic}))
