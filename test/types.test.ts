// Each wrapper is typed as what it wraps: usable wherever the wrapped library's type is expected.
// `npm run typecheck` checks these assertions; the tests themselves only run them.
import { connect as connectAmqp, type PicopConnection } from '@picop/amqp';
import { connect as connectMqtt, connectAsync as connectMqttAsync } from '@picop/mqtt';
import { createConnection, createPool, type PicopPool } from '@picop/mysql';
import { createPool as createCallbackPool, type PicopCallbackPool } from '@picop/mysql/callback';
import type { PicopPools } from '@picop/net-wrap';
import type { Client, Pool } from '@picop/pg';
import type { Redis } from '@picop/redis';
import type { ChannelModel } from 'amqplib';
import type { Redis as IORedis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type mysql from 'mysql2';
import type mysqlPromise from 'mysql2/promise';
import type pg from 'pg';
import { describe, expectTypeOf, it } from 'vitest';

describe('wrapper types', () => {
  it('@picop/redis Redis is an ioredis Redis', () => {
    expectTypeOf<Redis>().toExtend<IORedis>();
    expectTypeOf<Redis['pools']>().toEqualTypeOf<PicopPools<IORedis> | undefined>();
  });

  it('@picop/mysql pools are mysql2 pools, with pools typed', () => {
    expectTypeOf(createPool).returns.toEqualTypeOf<PicopPool>();
    expectTypeOf<PicopPool>().toExtend<mysqlPromise.Pool>();
    expectTypeOf(createCallbackPool).returns.toEqualTypeOf<PicopCallbackPool>();
    expectTypeOf<PicopCallbackPool>().toExtend<mysql.Pool>();
    expectTypeOf<PicopPool['pools']>().toEqualTypeOf<PicopPools<mysql.Pool> | undefined>();
    expectTypeOf(createConnection).returns.resolves.toExtend<mysqlPromise.Connection>();
  });

  it('@picop/pg Pool and Client are node-postgres ones', () => {
    expectTypeOf<Pool>().toExtend<pg.Pool>();
    expectTypeOf<Client>().toExtend<pg.Client>();
    expectTypeOf<Pool['pools']>().toEqualTypeOf<PicopPools<pg.Pool> | undefined>();
  });

  it('@picop/amqp connections are amqplib ChannelModels', () => {
    expectTypeOf<PicopConnection>().toExtend<ChannelModel>();
    expectTypeOf(connectAmqp).returns.resolves.toEqualTypeOf<ChannelModel>();
  });

  it('@picop/mqtt clients are mqtt.js MqttClients', () => {
    expectTypeOf(connectMqtt).returns.toEqualTypeOf<MqttClient>();
    expectTypeOf(connectMqttAsync).returns.resolves.toEqualTypeOf<MqttClient>();
  });
});
