//! AWS service integrations against moto's server, through `stepstream exec --config` as
//! a user runs them; every effect is checked through boto3.

mod aws_support;
mod common;

use aws_support::{exec, Moto};
use common::Scratch;
use md5::{Digest, Md5};
use serde_json::{json, Value};

/// Writes the definition and a config pointing every AWS service at `moto`, runs exec.
fn run(dir: &Scratch, moto: &Moto, def: Value, input: Value) -> Value {
    let cfg = dir.write(
        "stepstream.toml",
        format!(
            "[tasks.aws]\nregion = \"us-east-1\"\nendpoint = {:?}\n",
            moto.url()
        ),
    );
    let def = dir.write("def.asl.json", def.to_string());
    exec(&[
        "--definition",
        def.to_str().unwrap(),
        "--input",
        &input.to_string(),
        "--config",
        cfg.to_str().unwrap(),
    ])
}

fn make_table(moto: &Moto, name: &str) {
    moto.boto(&format!(
        "c('dynamodb').create_table(TableName={name:?}, BillingMode='PAY_PER_REQUEST', \
         KeySchema=[{{'AttributeName': 'id', 'KeyType': 'HASH'}}], \
         AttributeDefinitions=[{{'AttributeName': 'id', 'AttributeType': 'S'}}])\nout(None)"
    ));
}

#[test]
fn dynamodb_items_are_put_updated_read_and_deleted() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-ddb");
    make_table(&moto, "Orders");
    let def = json!({"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}, "total": {"N": "12"}}},
                "ResultPath": "$.put", "Next": "PutGone"},
        "PutGone": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "Orders", "Item": {"id": {"S": "gone"}}},
                "ResultPath": null, "Next": "Update"},
        "Update": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                   "Parameters": {"TableName": "Orders", "Key": {"id": {"S.$": "$.id"}},
                                  "UpdateExpression": "SET #s = :s",
                                  "ExpressionAttributeNames": {"#s": "status"},
                                  "ExpressionAttributeValues": {":s": {"S": "paid"}},
                                  "ReturnValues": "ALL_NEW"},
                   "ResultSelector": {"Attributes.$": "$.Attributes"},
                   "ResultPath": "$.update", "Next": "Get"},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": "Orders", "Key": {"id": {"S.$": "$.id"}}},
                "ResultPath": "$.get", "Next": "Delete"},
        "Delete": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:deleteItem",
                   "Parameters": {"TableName": "Orders", "Key": {"id": {"S": "gone"}}},
                   "ResultPath": "$.delete", "End": true}}});
    let out = run(&dir, &moto, def, json!({"id": "o-1"}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let o = &out["output"];
    let item = json!({"id": {"S": "o-1"}, "total": {"N": "12"}, "status": {"S": "paid"}});
    assert_eq!(o["update"]["Attributes"], item, "{o}");
    // getItem as AWS returns it: the item, then the Java SDK's HTTP metadata.
    let get = o["get"].as_object().unwrap();
    assert_eq!(
        get.keys().collect::<Vec<_>>(),
        ["Item", "SdkHttpMetadata", "SdkResponseMetadata"]
    );
    assert_eq!(get["Item"], item);
    assert_eq!(get["SdkHttpMetadata"]["HttpStatusCode"], 200);
    assert_eq!(
        get["SdkHttpMetadata"]["HttpHeaders"]["content-type"],
        "application/x-amz-json-1.0"
    );
    assert!(get["SdkResponseMetadata"]["RequestId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        o["put"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["SdkHttpMetadata", "SdkResponseMetadata"],
        "putItem returns only the metadata"
    );
    let seen = moto.boto(
        "t = c('dynamodb')\n\
         out([t.get_item(TableName='Orders', Key={'id': {'S': 'o-1'}}).get('Item'),\n\
              t.get_item(TableName='Orders', Key={'id': {'S': 'gone'}}).get('Item')])",
    );
    assert_eq!(seen, json!([item, null]));
}

#[test]
fn dynamodb_errors_are_caught_by_their_aws_names() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-ddb-err");
    make_table(&moto, "Orders");
    moto.boto("c('dynamodb').put_item(TableName='Orders', Item={'id': {'S': 'o-1'}, 'v': {'N': '1'}})\nout(None)");
    let def = json!({"StartAt": "Insert", "States": {
        "Insert": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                   "Parameters": {"TableName": "Orders", "Item": {"id": {"S": "o-1"}, "v": {"N": "2"}},
                                  "ConditionExpression": "attribute_not_exists(id)"},
                   "Catch": [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
                              "ResultPath": "$.exists", "Next": "Missing"}],
                   "End": true},
        "Missing": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName": "NoSuchTable", "Key": {"id": {"S": "x"}}},
                    "Catch": [{"ErrorEquals": ["DynamoDB.ResourceNotFoundException"],
                               "ResultPath": "$.missing", "Next": "SdkMissing"}],
                    "End": true},
        "SdkMissing": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                    "Parameters": {"TableName": "NoSuchTable", "Key": {"Id": {"S": "x"}}},
                    "Catch": [{"ErrorEquals": ["DynamoDb.ResourceNotFoundException"],
                               "ResultPath": "$.sdkMissing", "Next": "Done"}],
                    "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(&dir, &moto, def, json!({}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let o = &out["output"];
    assert_eq!(
        o["exists"]["Error"],
        "DynamoDB.ConditionalCheckFailedException"
    );
    let cause = o["exists"]["Cause"].as_str().unwrap();
    assert!(
        cause.starts_with("The conditional request failed (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ConditionalCheckFailedException; Request ID: "),
        "{cause}"
    );
    assert_eq!(o["missing"]["Error"], "DynamoDB.ResourceNotFoundException");
    assert_eq!(
        o["sdkMissing"]["Error"],
        "DynamoDb.ResourceNotFoundException"
    );
    let cause = o["sdkMissing"]["Cause"].as_str().unwrap();
    assert!(
        cause.starts_with(
            "Requested resource not found (Service: DynamoDb, Status Code: 400, Request ID: "
        ),
        "{cause}"
    );
    let v = moto.boto(
        "out(c('dynamodb').get_item(TableName='Orders', Key={'id': {'S': 'o-1'}})['Item']['v'])",
    );
    assert_eq!(v, json!({"N": "1"}), "the failed condition wrote nothing");
}

#[test]
fn sqs_messages_arrive_and_a_missing_queue_is_named() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-sqs");
    let url = moto.boto("out(c('sqs').create_queue(QueueName='jobs')['QueueUrl'])");
    let def = json!({"StartAt": "Send", "States": {
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                 "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": {"job.$": "$.job"},
                                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "etl"}}},
                 "ResultPath": "$.sent", "Next": "Lost"},
        "Lost": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                 "Parameters": {"QueueUrl.$": "States.Format('{}-nope', $.queue)", "MessageBody": "x"},
                 "Catch": [{"ErrorEquals": ["SQS.QueueDoesNotExistException"], "ResultPath": "$.lost", "Next": "Done"}],
                 "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(&dir, &moto, def, json!({"queue": url, "job": 42}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let sent = &out["output"]["sent"];
    let id = sent["MessageId"].as_str().expect("a MessageId");
    assert_eq!(
        sent["MD5OfMessageBody"],
        format!("{:x}", Md5::digest(br#"{"job":42}"#))
    );
    assert!(sent["SdkHttpMetadata"]["HttpStatusCode"] == 200, "{sent}");
    assert_eq!(
        out["output"]["lost"]["Error"],
        "SQS.QueueDoesNotExistException"
    );
    let got = moto.boto(&format!(
        "m = c('sqs').receive_message(QueueUrl={url}, MessageAttributeNames=['All'], WaitTimeSeconds=1)['Messages']\n\
         out([(x['MessageId'], x['Body'], x['MessageAttributes']['kind']['StringValue']) for x in m])",
        url = url
    ));
    assert_eq!(got, json!([[id, r#"{"job":42}"#, "etl"]]));
}

#[test]
fn sns_messages_reach_a_subscribed_queue_and_a_missing_topic_is_named() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-sns");
    let setup = moto.boto(
        "sns, sqs = c('sns'), c('sqs')\n\
         topic = sns.create_topic(Name='orders')['TopicArn']\n\
         q = sqs.create_queue(QueueName='audit')['QueueUrl']\n\
         arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=arn)\n\
         out([topic, q])",
    );
    let (topic, queue) = (setup[0].as_str().unwrap(), setup[1].as_str().unwrap());
    let def = json!({"StartAt": "Publish", "States": {
        "Publish": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn.$": "$.topic", "Subject": "new order",
                                   "Message": {"orderId.$": "$.id", "note": "a & b <c>"},
                                   "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "order"}}},
                    "ResultPath": "$.published", "Next": "Nowhere"},
        "Nowhere": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn.$": "States.Format('{}-gone', $.topic)", "Message": "x"},
                    "Catch": [{"ErrorEquals": ["SNS.NotFoundException"], "ResultPath": "$.nowhere", "Next": "Done"}],
                    "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(&dir, &moto, def, json!({"topic": topic, "id": "o-7"}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let published = out["output"]["published"].as_object().unwrap();
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        ["MessageId", "SdkHttpMetadata", "SdkResponseMetadata"]
    );
    assert_eq!(
        published["SdkHttpMetadata"]["HttpHeaders"]["content-type"],
        "text/xml"
    );
    let nowhere = &out["output"]["nowhere"];
    assert_eq!(nowhere["Error"], "SNS.NotFoundException");
    assert!(
        nowhere["Cause"]
            .as_str()
            .unwrap()
            .contains("(Service: AmazonSNS; Status Code: 404; Error Code: NotFound; Request ID: "),
        "{nowhere}"
    );
    let got = moto.boto(&format!(
        "m = c('sqs').receive_message(QueueUrl={queue:?}, WaitTimeSeconds=1)['Messages']\n\
         out([json.loads(x['Body']) for x in m])"
    ));
    let note = &got[0];
    assert_eq!(note["MessageId"], published["MessageId"], "{got}");
    assert_eq!(note["Subject"], "new order");
    assert_eq!(note["Message"], r#"{"orderId":"o-7","note":"a & b <c>"}"#);
    assert_eq!(note["MessageAttributes"]["kind"]["Value"], "order");
}

#[test]
fn eventbridge_events_are_put_and_failed_entries_fail_the_task() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-events");
    let queue = moto.boto(
        "ev, sqs = c('events'), c('sqs')\n\
         q = sqs.create_queue(QueueName='events')['QueueUrl']\n\
         arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         ev.put_rule(Name='orders', EventPattern=json.dumps({'source': ['shop.orders']}))\n\
         ev.put_targets(Rule='orders', Targets=[{'Id': 'q', 'Arn': arn}])\n\
         out(q)",
    );
    let def = json!({"StartAt": "Arn", "States": {
        "Arn": {"Type": "Pass", "Parameters": {"id.$": "$.id", "arn.$": "$$.Execution.Id"}, "Next": "Put"},
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "shop.orders", "DetailType": "OrderShipped",
                                            "Detail": {"orderId.$": "$.id"}}]},
                "ResultPath": "$.put", "Next": "Malformed"},
        "Malformed": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Source": "shop.orders", "DetailType": "Bad", "Detail": "not json"}]},
                "Catch": [{"ErrorEquals": ["EventBridge.FailedEntry"], "ResultPath": "$.bad", "Next": "Done"}],
                "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(&dir, &moto, def, json!({"id": "o-9"}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let put = &out["output"]["put"];
    assert_eq!(put["FailedEntryCount"], 0, "{put}");
    assert!(
        put.get("SdkHttpMetadata").is_none(),
        "putEvents has no HTTP metadata on AWS"
    );
    let event_id = put["Entries"][0]["EventId"].as_str().expect("an EventId");
    let bad = &out["output"]["bad"];
    assert_eq!(bad["Error"], "EventBridge.FailedEntry");
    let cause: Value = serde_json::from_str(bad["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["FailedEntryCount"], 1);
    assert_eq!(cause["Entries"][0]["ErrorCode"], "MalformedDetail");
    let got = moto.boto(&format!(
        "m = c('sqs').receive_message(QueueUrl={queue}, WaitTimeSeconds=2)['Messages']\n\
         out([json.loads(x['Body']) for x in m])",
        queue = queue
    ));
    assert_eq!(got.as_array().unwrap().len(), 1, "{got}");
    assert_eq!(got[0]["id"], event_id);
    assert_eq!(got[0]["detail-type"], "OrderShipped");
    assert_eq!(got[0]["detail"], json!({"orderId": "o-9"}));
    // AWS's optimized integration names the execution and the state machine in each event.
    let resources = got[0]["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 2, "{got}");
    assert_eq!(resources[0], out["output"]["arn"], "{got}");
    let machine = resources[1].as_str().unwrap();
    assert!(
        machine.starts_with("arn:aws:states:") && machine.contains(":stateMachine:"),
        "{machine}"
    );
}

#[test]
fn aws_sdk_calls_any_json_action_in_pascal_case() {
    let moto = Moto::start();
    let dir = Scratch::new("aws-sdk");
    make_table(&moto, "Orders");
    let url = moto.boto("out(c('sqs').create_queue(QueueName='inbox')['QueueUrl'])");
    let machine = moto.boto(
        "out(c('stepfunctions').create_state_machine(name='child', roleArn='arn:aws:iam::123456789012:role/r', \
         definition=json.dumps({'StartAt': 'P', 'States': {'P': {'Type': 'Pass', 'End': True}}}))['stateMachineArn'])",
    );
    let def = json!({"StartAt": "Describe", "States": {
        "Describe": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:describeTable",
                     "Parameters": {"TableName": "Orders"},
                     "ResultSelector": {"name.$": "$.Table.TableName", "keys.$": "$.Table.KeySchema"},
                     "ResultPath": "$.table", "Next": "QueueUrl"},
        "QueueUrl": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:getQueueUrl",
                     "Parameters": {"QueueName": "inbox"}, "ResultPath": "$.queue", "Next": "Machines"},
        "Machines": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:describeStateMachine",
                     "Parameters": {"StateMachineArn.$": "$.machine"},
                     "ResultSelector": {"Name.$": "$.Name", "Arn.$": "$.StateMachineArn"},
                     "ResultPath": "$.sfn", "Next": "NoQueue"},
        "NoQueue": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:getQueueUrl",
                    "Parameters": {"QueueName": "absent"},
                    "Catch": [{"ErrorEquals": ["Sqs.QueueDoesNotExistException"], "ResultPath": "$.noQueue", "Next": "Done"}],
                    "End": true},
        "Done": {"Type": "Succeed"}}});
    let out = run(&dir, &moto, def, json!({"machine": machine}));
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let o = &out["output"];
    assert_eq!(
        o["table"],
        json!({"name": "Orders", "keys": [{"AttributeName": "id", "KeyType": "HASH"}]})
    );
    assert_eq!(o["queue"], json!({"QueueUrl": url}));
    assert_eq!(
        o["sfn"],
        json!({"Name": "child", "Arn": machine}),
        "camelCase sfn answers in PascalCase"
    );
    assert_eq!(o["noQueue"]["Error"], "Sqs.QueueDoesNotExistException");
    assert!(
        o["noQueue"]["Cause"]
            .as_str()
            .unwrap()
            .contains("(Service: Sqs, Status Code: 400, Request ID: "),
        "{o}"
    );
}

#[test]
fn an_unreachable_service_is_an_sdk_client_exception_and_aws_needs_allowing() {
    let dir = Scratch::new("aws-unreachable");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.write(
        "stepstream.toml",
        format!("[tasks.aws.endpoints]\nsqs = \"http://127.0.0.1:{port}\"\n"),
    );
    let def = dir.write("def.asl.json", json!({"StartAt": "Send", "States": {
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                 "Parameters": {"QueueUrl": "http://127.0.0.1/1/q", "MessageBody": "x"},
                 "Catch": [{"ErrorEquals": ["SQS.SdkClientException"], "ResultPath": "$.err", "Next": "Aws"}],
                 "End": true},
        "Aws": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": "T", "Key": {"id": {"S": "x"}}}, "End": true}}}).to_string());
    let out = exec(&[
        "--definition",
        def.to_str().unwrap(),
        "--input",
        "{}",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.TaskFailed");
    let cause = out["cause"].as_str().unwrap();
    assert!(
        cause.contains("https://dynamodb.us-east-1.amazonaws.com") && cause.contains("allow_hosts"),
        "{cause}"
    );
}

#[test]
fn the_aws_sdk_service_table_matches_botocore_models() {
    use stepstream::tasks::aws::services::SERVICES;
    let rows: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            json!({"names": std::iter::once(s.name).chain(s.aliases.iter().copied()).collect::<Vec<_>>(),
                   "signing": s.signing_name, "endpoint": s.endpoint_prefix, "target": s.target_prefix,
                   "version": s.json_version, "camel": s.camel_case})
        })
        .collect();
    // Compares each row with the model botocore (installed beside moto) ships for it.
    let moto = aws_support::python();
    let script = format!(
        "import botocore.session, json, sys\n\
         s = botocore.session.get_session()\n\
         known = set(s.get_available_services())\n\
         bad = []\n\
         for r in json.loads({rows:?}):\n    \
             name = next((n for n in r['names'] if n in known), None)\n    \
             if name is None:\n        bad.append([r['names'], 'no botocore model']); continue\n    \
             m = s.get_service_model(name)\n    \
             md = m.metadata\n    \
             members = [k for op in m.operation_names for k in (m.operation_model(op).input_shape.members if m.operation_model(op).input_shape else {{}})]\n    \
             camel = sum(k[0].islower() for k in members) > len(members) / 2\n    \
             got = dict(signing=md.get('signingName') or md['endpointPrefix'], endpoint=md['endpointPrefix'],\n                        target=md.get('targetPrefix'), version=md.get('jsonVersion'), camel=camel,\n                        json='json' in md.get('protocols', [md.get('protocol')]))\n    \
             want = dict(signing=r['signing'], endpoint=r['endpoint'], target=r['target'], version=r['version'], camel=r['camel'], json=True)\n    \
             if got != want: bad.append([name, got, want])\n\
         print(json.dumps(bad))\n",
        rows = Value::Array(rows).to_string()
    );
    let out = std::process::Command::new(moto)
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bad, json!([]), "rows that differ from botocore: {bad}");
}

/// A server on 127.0.0.1 that reads each request and answers `response` (or never, when
/// `None`); it lives as long as the test process.
fn fake_service(response: Option<Vec<u8>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf);
            match &response {
                Some(r) => {
                    let _ = conn.write_all(r);
                }
                None => held.push(conn),
            }
        }
    });
    url
}

fn http_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[test]
fn timeouts_throttling_faults_and_oversized_answers_have_aws_names() {
    let dir = Scratch::new("aws-faults");
    let hang = fake_service(None);
    let throttled = fake_service(Some(http_response(
        "400 Bad Request",
        &[("x-amzn-requestid", "T1"), ("content-type", "application/x-amz-json-1.0")],
        br#"{"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "slow down"}"#,
    )));
    let broken = fake_service(Some(http_response(
        "500 Internal Server Error",
        &[("content-type", "text/html")],
        b"<html>oops</html>",
    )));
    let huge = fake_service(Some(http_response(
        "200 OK",
        &[("content-type", "text/xml")],
        &vec![b' '; 300 * 1024],
    )));
    let cfg = dir.write(
        "stepstream.toml",
        format!(
            "[tasks.aws]\nregion = \"us-east-1\"\n\
             endpoints = {{ sqs = {hang:?}, dynamodb = {throttled:?}, events = {broken:?}, sns = {huge:?} }}\n"
        ),
    );
    let catch = |names: &[&str], path: &str, next: &str| json!([{"ErrorEquals": names, "ResultPath": path, "Next": next}]);
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "Slow", "States": {
            "Slow": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "TimeoutSeconds": 1,
                     "Parameters": {"QueueUrl": "http://127.0.0.1/1/q", "MessageBody": "x"},
                     "Catch": catch(&["States.Timeout"], "$.slow", "Throttled"), "End": true},
            "Throttled": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                     "Parameters": {"TableName": "T", "Key": {"id": {"S": "x"}}},
                     "Retry": [{"ErrorEquals": ["DynamoDB.ProvisionedThroughputExceededException"],
                                "IntervalSeconds": 0, "MaxAttempts": 2}],
                     "Catch": catch(&["DynamoDB.ProvisionedThroughputExceededException"], "$.throttled", "Broken"), "End": true},
            "Broken": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                     "Parameters": {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]},
                     "Catch": catch(&["EventBridge.InternalServerErrorException"], "$.broken", "Huge"), "End": true},
            "Huge": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                     "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "m"},
                     "Catch": catch(&["States.DataLimitExceeded"], "$.huge", "Done"), "End": true},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    );
    let started = std::time::Instant::now();
    let out = exec(&[
        "--definition",
        def.to_str().unwrap(),
        "--input",
        "{}",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the hung call was cut off"
    );
    let o = &out["output"];
    assert_eq!(o["slow"]["Error"], "States.Timeout", "{o}");
    assert_eq!(
        o["throttled"]["Error"],
        "DynamoDB.ProvisionedThroughputExceededException"
    );
    assert_eq!(
        o["throttled"]["Cause"],
        "slow down (Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ProvisionedThroughputExceededException; Request ID: T1; Proxy: null)"
    );
    assert_eq!(
        o["broken"]["Error"],
        "EventBridge.InternalServerErrorException"
    );
    assert!(
        o["broken"]["Cause"]
            .as_str()
            .unwrap()
            .contains("Status Code: 500"),
        "{o}"
    );
    assert_eq!(o["huge"]["Error"], "States.DataLimitExceeded", "{o}");
}
