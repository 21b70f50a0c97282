"""The fixtures themselves work (the other dashboard tests build on them)."""

import confluent_kafka


def test_kafka_topic_round_trip(kafka):
    kafka.create_topic("harness-check", partitions=2)
    p = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(3):
        p.produce("harness-check", key=f"k{i}", value=f"v{i}", partition=0)
    assert p.flush(10) == 0
    got = kafka.read("harness-check", 3)
    assert [(r.key, r.value) for r in got] == [("k0", "v0"), ("k1", "v1"), ("k2", "v2")]


def test_mqtt_client_is_seen_by_the_api(mqtt, admin_api):
    c = mqtt("harness-client")
    mqtt.publish(c, "harness/t", b"x", qos=1)
    r = admin_api("GET", "/api/v5/clients/harness-client")
    assert r.status == 200, r.text
    assert r.body["clientid"] == "harness-client"
