"""Writes N requests {"id", "n"} and reads the results topic until every one has a result;
checks each (SUCCEEDED, answer.square == n * n) and prints the time. For kafka_invoke.sh."""

import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, requests, results, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"drive-{time.time()}",
                     "auto.offset.reset": "earliest"})
consumer.subscribe([results])
while not consumer.assignment():
    consumer.poll(0.2)
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
t0 = time.time()
for i in range(n):
    producer.produce(requests, key=f"e-{i}", value=json.dumps({"id": f"e-{i}", "n": i}))
    if i % 1000 == 0:
        producer.poll(0)
producer.flush()
t1 = time.time()
seen, wrong = set(), 0
while len(seen) < n and time.time() - t0 < 300:
    for m in consumer.consume(1000, 0.2):
        if m.error():
            continue
        r = json.loads(m.value())
        i = int(m.key().decode()[2:])
        if r["status"] != "SUCCEEDED" or r["output"]["answer"]["square"] != i * i:
            wrong += 1
        seen.add(i)
t2 = time.time()
print(f"{n} requests written in {t1 - t0:.2f} s; {len(seen)} results ({wrong} wrong) "
      f"{t2 - t0:.2f} s after the first request: {len(seen) / (t2 - t0):.0f} executions/s")
sys.exit(0 if len(seen) == n and wrong == 0 else 1)
