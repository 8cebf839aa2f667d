/**
 * Codec and grpc-js method definitions for Skiff's session-token service
 * (`skiff/session.proto`, package `skiff.session.v1`): `SessionTokens/CreateSessionToken`, the
 * unary call a node agent makes over mTLS with its SVID to get a short-lived bearer token for
 * ztunnel (issue 6 §3). Shared by the control plane (`src/cli/serve/session.ts`) and the agent
 * (`agents/ztunnel/token-file.ts`).
 *
 * The message types come from the shared {@link protoRoot} when it loads `skiff/session.proto`,
 * else from {@link SESSION_PROTO_DESCRIPTOR}.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { protoRoot } from '../loader.js';

/** Full gRPC method path of `CreateSessionToken`. */
export const CREATE_SESSION_TOKEN_PATH = '/skiff.session.v1.SessionTokens/CreateSessionToken';

/** `CreateSessionTokenRequest`: `ttlSeconds` 0 or absent means the control plane's default. */
export interface CreateSessionTokenRequestMessage {
  ttlSeconds?: number;
}

/** `SessionToken`: the token (a secret), its expiry (Unix seconds) and the SPIFFE ID it is bound to. */
export interface SessionTokenMessage {
  token: string;
  expiresAtUnixSeconds: number;
  spiffeId: string;
}

const REQUEST = 'skiff.session.v1.CreateSessionTokenRequest';
const RESPONSE = 'skiff.session.v1.SessionToken';
const TO_OBJECT = { longs: Number, defaults: true } as const;

/**
 * `skiff/session.proto` as a protobufjs JSON descriptor (camelCase field names, as the shared
 * loader parses `.proto` files). Used when the shared root does not list the file, including in
 * the single-file agent binary, which has no `.proto` files on disk. `session.test.ts` checks that
 * it equals the parsed `.proto` file.
 */
export const SESSION_PROTO_DESCRIPTOR = {
  nested: {
    skiff: {
      nested: {
        session: {
          nested: {
            v1: {
              nested: {
                SessionTokens: { methods: { CreateSessionToken: { requestType: 'CreateSessionTokenRequest', responseType: 'SessionToken' } } },
                CreateSessionTokenRequest: { fields: { ttlSeconds: { type: 'uint32', id: 1 } } },
                SessionToken: { fields: { token: { type: 'string', id: 1 }, expiresAtUnixSeconds: { type: 'int64', id: 2 }, spiffeId: { type: 'string', id: 3 } } },
              },
            },
          },
        },
      },
    },
  },
} as const;

let ownRoot: protobuf.Root | undefined;

function sessionType(name: string): protobuf.Type {
  try {
    return protoRoot().lookupType(name);
  } catch {
    // The shared root does not list skiff/session.proto: use the descriptor above.
    if (!ownRoot) {
      ownRoot = protobuf.Root.fromJSON(SESSION_PROTO_DESCRIPTOR as unknown as protobuf.INamespace);
      ownRoot.resolveAll();
    }
    return ownRoot.lookupType(name);
  }
}

function encode(name: string, value: object): Buffer {
  const type = sessionType(name);
  const problem = type.verify(value);
  if (problem) throw new Error(`${name}: ${problem}`);
  const bytes = type.encode(type.fromObject(value)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes a `CreateSessionTokenRequest`. */
export function encodeCreateSessionTokenRequest(req: CreateSessionTokenRequestMessage): Buffer {
  return encode(REQUEST, req);
}

/** Decodes a `CreateSessionTokenRequest`; throws on bytes that are not one. */
export function decodeCreateSessionTokenRequest(bytes: Uint8Array): CreateSessionTokenRequestMessage {
  const type = sessionType(REQUEST);
  const message: CreateSessionTokenRequestMessage = type.toObject(type.decode(bytes), TO_OBJECT);
  return message;
}

/** Encodes a `SessionToken`. */
export function encodeSessionToken(res: SessionTokenMessage): Buffer {
  return encode(RESPONSE, res);
}

/** Decodes a `SessionToken`; throws on bytes that are not one. */
export function decodeSessionToken(bytes: Uint8Array): SessionTokenMessage {
  const type = sessionType(RESPONSE);
  const message: SessionTokenMessage = type.toObject(type.decode(bytes), TO_OBJECT) as SessionTokenMessage;
  return message;
}

/** The grpc-js method definition of `CreateSessionToken` (both sides). */
export function createSessionTokenMethod(): MethodDefinition<CreateSessionTokenRequestMessage, SessionTokenMessage> {
  return {
    path: CREATE_SESSION_TOKEN_PATH,
    requestStream: false,
    responseStream: false,
    originalName: 'createSessionToken',
    requestSerialize: encodeCreateSessionTokenRequest,
    requestDeserialize: decodeCreateSessionTokenRequest,
    responseSerialize: encodeSessionToken,
    responseDeserialize: decodeSessionToken,
  };
}

/** The grpc-js service definition of `skiff.session.v1.SessionTokens`. */
export function sessionTokensServiceDefinition(): ServiceDefinition {
  const definition: ServiceDefinition = { CreateSessionToken: createSessionTokenMethod() };
  return definition;
}
