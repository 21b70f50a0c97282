"""The hand-written MQTT-to-Kafka bridge most tutorials show: a paho-mqtt subscriber that
calls confluent_kafka.Producer.produce for every message. The peer of Ferry in scenario K1.
Usage: bridge.py MQTT_PORT KAFKA_BOOTSTRAP KAFKA_TOPIC FILTER"""
import sys

import paho.mqtt.client as mqtt
from confluent_kafka import Producer

port, bootstrap, topic, filt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True,
                     "partitioner": "murmur2_random"})


def on_message(_client, _userdata, msg):
    key = msg.topic.rsplit("/", 1)[-1]
    while True:
        try:
            producer.produce(topic, value=msg.payload, key=key)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def on_connect(client, _userdata, _flags, _reason, _props):
    client.subscribe(filt, qos=1)
    print("bridge ready", flush=True)


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-kafka-bridge")
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", port)
try:
    client.loop_forever()
finally:
    producer.flush(10)
