/**
 * Generated from the Memory Layer service's OpenAPI document (GET /openapi.json) by
 * openapi-typescript. Do not edit: run `npm run client:types` after changing a route's schema.
 */

export interface paths {
    "/mcp": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Model Context Protocol (Streamable HTTP, stateless)
         * @description JSON-RPC messages of the Model Context Protocol. Tools: remember, remember_document, recall, get_memory, update_memory, forget, list_memories; each runs as the REST route it mirrors, with the caller of this request.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/artifacts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Upload a file (streamed)
         * @description Send the file's bytes as the body, with its `Content-Type` (stored and returned on download; default application/octet-stream). The SHA-256 is computed while the body streams to the object store; with `X-Checksum-SHA256` a different body is refused (400) and nothing is stored. Bodies over ARTIFACT_MAX_BYTES get 413 `payload_too_large`, nothing stored. Every upload is a new artifact: nothing is ever overwritten.
         */
        post: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: {
                    /** @description The SHA-256 the body must have (hex, or base64): a mismatch is refused with 400 */
                    "x-checksum-sha256"?: string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            contentType?: string;
                            /** Format: date-time */
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            /** Format: uuid */
                            id?: string;
                            /** @description SHA-256 (hex) of the bytes; also the ETag */
                            sha256?: string;
                            size?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/artifacts/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Download a file (streamed, checksum verified)
         * @description The bytes with their content type, `ETag` (the SHA-256), `Digest` and `Repr-Digest`. The SHA-256 is checked while streaming: if the stored bytes no longer match, the response is cut short before its end (never a complete wrong body). `If-None-Match` with the ETag gets 304.
         */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": string;
                    };
                };
                /** @description Default Response */
                304: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A division's audit events, oldest first
         * @description Page with `afterSeq` (the `nextAfterSeq` of the previous page). `resourceType` and `resourceId` together narrow the page to one resource's events, e.g. `resourceType=memory&resourceId=<id>` for a memory's trail.
         */
        get: {
            parameters: {
                query?: {
                    afterSeq?: number;
                    divisionId?: string;
                    limit?: number;
                    /** @description Only events about this memory: its changes and every read that showed it (with `type=access`: who saw it) */
                    memoryId?: string;
                    resourceId?: string;
                    resourceType?: string;
                    /** @description `access`: reads (`memory.access`, `pii.read`); `change`: everything else */
                    type?: "access" | "change";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit/head": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The division's latest event hash, signed with the server's Ed25519 key */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/divisions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the divisions the caller may use */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                createdAt?: string;
                                defaultTtlDays?: number | null;
                                id?: string;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                name?: string;
                            }[];
                        };
                    };
                };
            };
        };
        put?: never;
        /** Create a division (tenant) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @description Days until new memories expire; 0 never; null: the service default */
                        defaultTtlDays?: number | null;
                        id: string;
                        metadata?: {
                            [key: string]: unknown;
                        };
                        name?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            defaultTtlDays?: number | null;
                            id?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            name?: string;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/divisions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Read a division */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            defaultTtlDays?: number | null;
                            id?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            name?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /**
         * Erase a division: purge its content everywhere and destroy its data key
         * @description Only with `erase=true`, by an admin of every division; 409 `legal_hold` while any legal hold in the division is active. Purges every memory's content (ids and checksums stay for the trail), vectors, index entries, artifacts and sessions, then destroys the division's data key (KEY_DIR): snapshots, archives and artifact copies taken before can no longer be read. The audit trail keeps a signed erasure record.
         */
        delete: {
            parameters: {
                query?: {
                    erase?: boolean;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            auditHead?: {
                                hash?: string;
                                seq?: number;
                            };
                            destroyed?: {
                                [key: string]: unknown;
                            };
                            divisionId?: string;
                            erasedAt?: string;
                            erasedBy?: string;
                            signedHead?: {
                                [key: string]: unknown;
                            } | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/divisions/{id}/agents": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List a division's agents */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                createdAt?: string;
                                divisionId?: string;
                                id?: string;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                name?: string;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        /** Register an agent in a division */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        id: string;
                        metadata?: {
                            [key: string]: unknown;
                        };
                        name?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            divisionId?: string;
                            id?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            name?: string;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/divisions/{id}/erasure": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A division's erasure record: when, by whom, what was destroyed, the signed head */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            auditHead?: {
                                hash?: string;
                                seq?: number;
                            };
                            destroyed?: {
                                [key: string]: unknown;
                            };
                            divisionId?: string;
                            erasedAt?: string;
                            erasedBy?: string;
                            signedHead?: {
                                [key: string]: unknown;
                            } | null;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/documents": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A division's documents, newest first */
        get: {
            parameters: {
                query?: {
                    cursor?: string;
                    divisionId?: string;
                    limit?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                agentId?: string | null;
                                /**
                                 * Format: uuid
                                 * @description The original (GET /v1/artifacts/{id})
                                 */
                                artifactId?: string | null;
                                chunkCount?: number;
                                /** @description The chunks in order: each is a memory of the session (`sequence` = position) */
                                chunks?: {
                                    /** Format: uuid */
                                    memoryId?: string;
                                    position?: number;
                                    /** @enum {string} */
                                    status?: "pending" | "indexed" | "failed";
                                }[];
                                chunksFailed?: number;
                                chunksIndexed?: number;
                                /** @enum {string} */
                                contentType?: "text/plain" | "text/markdown";
                                /** Format: date-time */
                                createdAt?: string;
                                createdBy?: string;
                                divisionId?: string;
                                error?: string | null;
                                /** Format: uuid */
                                id?: string;
                                kind?: string;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                namespace?: string;
                                /** Format: date-time */
                                occurredAt?: string | null;
                                sessionId?: string;
                                sha256?: string;
                                size?: number;
                                /**
                                 * @description pending: waiting for a worker; splitting: being split; indexing: chunks written, not all searchable yet; indexed: every chunk searchable; failed: see `error`
                                 * @enum {string}
                                 */
                                status?: "pending" | "splitting" | "indexing" | "indexed" | "failed";
                                tags?: string[];
                                title?: string | null;
                                /** Format: date-time */
                                updatedAt?: string;
                                /** @description 1 at upload, +1 per replacement */
                                version?: number;
                            }[];
                            nextCursor?: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        /**
         * Upload a document to be split into memories
         * @description The body is the document (`text/plain` or `text/markdown`, UTF-8, at most MAX_DOCUMENT_BYTES). It is stored as an artifact, and a worker splits it into chunks — by headings (Markdown) and paragraphs, each at most DOCUMENT_CHUNK_CHARS characters, overlapping by DOCUMENT_CHUNK_OVERLAP — written as memories of one session (`sessionId`, default the document id; `sequence` = chunk order) linked to the artifact. Answers 202 at once; `GET /v1/documents/{id}` shows the progress. Refused with nothing stored: another type 415, too large 413, empty or not UTF-8 400. With `Idempotency-Key`, a retry of the same upload (same body and query) gets the first answer (header `idempotent-replayed: true`) and stores nothing; the key with another upload: 422 `idempotency_key_reused`.
         */
        post: {
            parameters: {
                query?: {
                    /** @description A registered agent of the division (agent tokens: their own) */
                    agentId?: string;
                    divisionId?: string;
                    /** @description Of every chunk; default "document" */
                    kind?: string;
                    /** @description A JSON object, given to every chunk (beside `document: {id, version, chunk, chunks}`) */
                    metadata?: string;
                    namespace?: string;
                    /** @description Every chunk's occurredAt */
                    occurredAt?: string;
                    /** @description The chunks' session; default: the document's id */
                    sessionId?: string;
                    /** @description Repeat the parameter for several (`tags=a&tags=b`); given to every chunk */
                    tags?: string[];
                    /** @description Shown with the document and the root of every chunk’s heading path */
                    title?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "text/markdown": string;
                    "text/plain": string;
                };
            };
            responses: {
                /** @description Default Response */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /**
                             * Format: uuid
                             * @description The original (GET /v1/artifacts/{id})
                             */
                            artifactId?: string | null;
                            chunkCount?: number;
                            /** @description The chunks in order: each is a memory of the session (`sequence` = position) */
                            chunks?: {
                                /** Format: uuid */
                                memoryId?: string;
                                position?: number;
                                /** @enum {string} */
                                status?: "pending" | "indexed" | "failed";
                            }[];
                            chunksFailed?: number;
                            chunksIndexed?: number;
                            /** @enum {string} */
                            contentType?: "text/plain" | "text/markdown";
                            /** Format: date-time */
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            error?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            sessionId?: string;
                            sha256?: string;
                            size?: number;
                            /**
                             * @description pending: waiting for a worker; splitting: being split; indexing: chunks written, not all searchable yet; indexed: every chunk searchable; failed: see `error`
                             * @enum {string}
                             */
                            status?: "pending" | "splitting" | "indexing" | "indexed" | "failed";
                            tags?: string[];
                            title?: string | null;
                            /** Format: date-time */
                            updatedAt?: string;
                            /** @description 1 at upload, +1 per replacement */
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/documents/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A document: its progress and its chunks in order */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /**
                             * Format: uuid
                             * @description The original (GET /v1/artifacts/{id})
                             */
                            artifactId?: string | null;
                            chunkCount?: number;
                            /** @description The chunks in order: each is a memory of the session (`sequence` = position) */
                            chunks?: {
                                /** Format: uuid */
                                memoryId?: string;
                                position?: number;
                                /** @enum {string} */
                                status?: "pending" | "indexed" | "failed";
                            }[];
                            chunksFailed?: number;
                            chunksIndexed?: number;
                            /** @enum {string} */
                            contentType?: "text/plain" | "text/markdown";
                            /** Format: date-time */
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            error?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            sessionId?: string;
                            sha256?: string;
                            size?: number;
                            /**
                             * @description pending: waiting for a worker; splitting: being split; indexing: chunks written, not all searchable yet; indexed: every chunk searchable; failed: see `error`
                             * @enum {string}
                             */
                            status?: "pending" | "splitting" | "indexing" | "indexed" | "failed";
                            tags?: string[];
                            title?: string | null;
                            /** Format: date-time */
                            updatedAt?: string;
                            /** @description 1 at upload, +1 per replacement */
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        /**
         * Replace a document with a new version
         * @description The new version is stored and split like an upload; the old chunks are deleted (audited as memory deletes) and its original removed, in one transaction with `document.replace`. Refused with 409 `legal_hold` while a hold covers one of its chunks, its agent or its division; nothing changes.
         */
        put: {
            parameters: {
                query?: {
                    divisionId?: string;
                    /** @description Shown with the document and the root of every chunk’s heading path */
                    title?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "text/markdown": string;
                    "text/plain": string;
                };
            };
            responses: {
                /** @description Default Response */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /**
                             * Format: uuid
                             * @description The original (GET /v1/artifacts/{id})
                             */
                            artifactId?: string | null;
                            chunkCount?: number;
                            /** @description The chunks in order: each is a memory of the session (`sequence` = position) */
                            chunks?: {
                                /** Format: uuid */
                                memoryId?: string;
                                position?: number;
                                /** @enum {string} */
                                status?: "pending" | "indexed" | "failed";
                            }[];
                            chunksFailed?: number;
                            chunksIndexed?: number;
                            /** @enum {string} */
                            contentType?: "text/plain" | "text/markdown";
                            /** Format: date-time */
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            error?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            sessionId?: string;
                            sha256?: string;
                            size?: number;
                            /**
                             * @description pending: waiting for a worker; splitting: being split; indexing: chunks written, not all searchable yet; indexed: every chunk searchable; failed: see `error`
                             * @enum {string}
                             */
                            status?: "pending" | "splitting" | "indexing" | "indexed" | "failed";
                            tags?: string[];
                            title?: string | null;
                            /** Format: date-time */
                            updatedAt?: string;
                            /** @description 1 at upload, +1 per replacement */
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        post?: never;
        /**
         * Delete a document, its chunks and its original
         * @description Its chunks are deleted like memories (soft; `?purge=true` erases them now and needs memory:delete and admin) and its original is removed from the object store, in one transaction with `document.delete` (or `document.purge`). Refused with 409 `legal_hold` while a hold covers one of its chunks, its agent or its division; nothing changes.
         */
        delete: {
            parameters: {
                query?: {
                    divisionId?: string;
                    /** @description Erase text, vector and index entry now (needs memory:delete and admin) */
                    purge?: boolean;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/exports": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Export a proof bundle of a division
         * @description Canonical JSON (RFC 8785): memory records (redacted unless the caller has pii:read), vector metadata, audit events and the signed head. Check it offline with `memory-layer audit verify BUNDLE`.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        divisionId?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/dead": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List dead-lettered jobs */
        get: {
            parameters: {
                query?: {
                    /** @description Job id to continue after */
                    after?: number;
                    limit?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                attempts?: number;
                                createdAt?: string;
                                failedAt?: string;
                                id?: number;
                                lastError?: string | null;
                                memoryId?: string | null;
                                queue?: string;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/jobs/dead/{id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Put a dead job back in the queue with fresh attempts */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: number;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            id?: number;
                            status?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/legal-holds": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A division's holds (active and released) */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                agentId?: string | null;
                                createdAt?: string;
                                createdBy?: string;
                                divisionId?: string;
                                id?: number;
                                reason?: string;
                                releasedAt?: string | null;
                                releasedBy?: string | null;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        /**
         * Hold a whole division, or one agent's memories
         * @description While active, no covered memory is expired, deleted or purged.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        agentId?: string;
                        divisionId?: string;
                        reason: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            id?: number;
                            reason?: string;
                            releasedAt?: string | null;
                            releasedBy?: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/legal-holds/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Release a division or agent hold */
        delete: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: number;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            createdAt?: string;
                            createdBy?: string;
                            divisionId?: string;
                            id?: number;
                            reason?: string;
                            releasedAt?: string | null;
                            releasedBy?: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List memories, newest first
         * @description Cursor pagination: pass `nextCursor` as `cursor` for the next page; null on the last page.
         */
        get: {
            parameters: {
                query?: {
                    agentId?: string;
                    cursor?: string;
                    divisionId?: string;
                    kind?: string;
                    limit?: number;
                    namespace?: string;
                    /** @description occurredAt at or after */
                    occurredAfter?: string;
                    /** @description occurredAt before */
                    occurredBefore?: string;
                    /** @description The conversation, thread or document the memory belongs to (same rules as other ids) */
                    sessionId?: string;
                    status?: "pending" | "indexed" | "failed";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                agentId?: string | null;
                                /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                                checksum?: string;
                                /** Format: date-time */
                                createdAt?: string;
                                divisionId?: string;
                                embedding?: {
                                    dimensions?: number;
                                    model?: string;
                                    version?: string;
                                } | null;
                                expiresAt?: string | null;
                                /** Format: uuid */
                                id?: string;
                                kind?: string;
                                legalHold?: boolean;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                namespace?: string;
                                /** Format: date-time */
                                occurredAt?: string | null;
                                piiFlags?: string[];
                                redacted?: boolean;
                                sequence?: number | null;
                                sessionId?: string | null;
                                /** @enum {string} */
                                status?: "pending" | "indexed" | "failed";
                                /** @description The newer memory that replaced this one */
                                supersededBy?: string | null;
                                tags?: string[];
                                /** @description Redacted for callers without pii:read */
                                text?: string;
                                /** Format: date-time */
                                updatedAt?: string;
                                version?: number;
                            }[];
                            nextCursor?: string | null;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        /**
         * Store a memory
         * @description Writes the memory (status `pending`) and its indexing job in one transaction. With `?wait=true` the answer comes once it is indexed, or after the wait timeout with status still `pending`. Honours `Idempotency-Key`.
         */
        post: {
            parameters: {
                query?: {
                    /** @description Answer once indexed (or after WAIT_TIMEOUT_MS). */
                    wait?: boolean;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @description A registered agent of the division. */
                        agentId?: string;
                        /** @description Defaults to "default". */
                        divisionId?: string;
                        /**
                         * Format: date-time
                         * @description null: never expires; absent: the division's default TTL
                         */
                        expiresAt?: string | null;
                        /** @description Defaults to "note". */
                        kind?: string;
                        metadata?: {
                            [key: string]: unknown;
                        };
                        /** @description `name` or `name@version` of the vector */
                        model?: string;
                        /** @description Defaults to "default". */
                        namespace?: string;
                        /**
                         * Format: date-time
                         * @description When the remembered thing happened (ISO 8601), distinct from createdAt
                         */
                        occurredAt?: string;
                        /** @description PII categories the caller adds to those detected (email, phone, card, iban are detected) */
                        piiFlags?: string[];
                        /** @description Place in the session (needs sessionId); default: after the session's last memory */
                        sequence?: number;
                        /** @description The conversation, thread or document the memory belongs to (same rules as other ids) */
                        sessionId?: string;
                        /** @description Older memories of the division this one replaces: search skips them unless includeSuperseded; they stay readable by id */
                        supersedes?: string[];
                        tags?: string[];
                        /** @description The memory. Empty or whitespace-only text is refused. */
                        text: string;
                        /** @description A precomputed embedding; needs `model`. Nothing is embedded: the queued job only puts it in the vector index. */
                        vector?: number[];
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                            checksum?: string;
                            /** Format: date-time */
                            createdAt?: string;
                            divisionId?: string;
                            embedding?: {
                                dimensions?: number;
                                model?: string;
                                version?: string;
                            } | null;
                            expiresAt?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            legalHold?: boolean;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            piiFlags?: string[];
                            redacted?: boolean;
                            sequence?: number | null;
                            sessionId?: string | null;
                            /** @enum {string} */
                            status?: "pending" | "indexed" | "failed";
                            /** @description The newer memory that replaced this one */
                            supersededBy?: string | null;
                            tags?: string[];
                            /** @description Redacted for callers without pii:read */
                            text?: string;
                            /** Format: date-time */
                            updatedAt?: string;
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Read a memory */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                            checksum?: string;
                            /** Format: date-time */
                            createdAt?: string;
                            divisionId?: string;
                            embedding?: {
                                dimensions?: number;
                                model?: string;
                                version?: string;
                            } | null;
                            expiresAt?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            legalHold?: boolean;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            piiFlags?: string[];
                            redacted?: boolean;
                            sequence?: number | null;
                            sessionId?: string | null;
                            /** @enum {string} */
                            status?: "pending" | "indexed" | "failed";
                            /** @description The newer memory that replaced this one */
                            supersededBy?: string | null;
                            tags?: string[];
                            /** @description Redacted for callers without pii:read */
                            text?: string;
                            /** Format: date-time */
                            updatedAt?: string;
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        /**
         * Delete a memory (soft delete, or purge)
         * @description The memory disappears from reads and search at once; the sweeper purges it after the grace period. `?purge=true` erases text, vector and index entry now (erasure requests; needs memory:delete and admin). Held memories answer 409 `legal_hold`. `If-Match` is honoured.
         */
        delete: {
            parameters: {
                query?: {
                    divisionId?: string;
                    /** @description Erase text, vector and index entry now (needs memory:delete and admin) */
                    purge?: boolean;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                412: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        options?: never;
        head?: never;
        /**
         * Change a memory
         * @description Replaces the given fields. A text change re-embeds the memory. Send `If-Match` with the ETag (version) you read: a stale version gets 412.
         */
        patch: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /**
                         * Format: date-time
                         * @description null: never expires; absent: the division's default TTL
                         */
                        expiresAt?: string | null;
                        kind?: string;
                        metadata?: {
                            [key: string]: unknown;
                        };
                        namespace?: string;
                        /** @description PII categories the caller adds to those detected (email, phone, card, iban are detected) */
                        piiFlags?: string[];
                        tags?: string[];
                        text?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                            checksum?: string;
                            /** Format: date-time */
                            createdAt?: string;
                            divisionId?: string;
                            embedding?: {
                                dimensions?: number;
                                model?: string;
                                version?: string;
                            } | null;
                            expiresAt?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            legalHold?: boolean;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            piiFlags?: string[];
                            redacted?: boolean;
                            sequence?: number | null;
                            sessionId?: string | null;
                            /** @enum {string} */
                            status?: "pending" | "indexed" | "failed";
                            /** @description The newer memory that replaced this one */
                            supersededBy?: string | null;
                            tags?: string[];
                            /** @description Redacted for callers without pii:read */
                            text?: string;
                            /** Format: date-time */
                            updatedAt?: string;
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                412: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        trace?: never;
    };
    "/v1/memories/{id}/artifacts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A memory's files */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                agentId?: string | null;
                                contentType?: string;
                                /** Format: date-time */
                                createdAt?: string;
                                createdBy?: string;
                                divisionId?: string;
                                /** Format: uuid */
                                id?: string;
                                /** @description SHA-256 (hex) of the bytes; also the ETag */
                                sha256?: string;
                                size?: number;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories/{id}/artifacts/{artifactId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Link a file to a memory (same division; idempotent) */
        put: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    artifactId: string;
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        post?: never;
        /**
         * Unlink a file from a memory (the file stays)
         * @description Refused with 409 `legal_hold` while a legal hold covers the memory.
         */
        delete: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    artifactId: string;
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories/{id}/legal-hold": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /**
         * Place or release a legal hold on one memory
         * @description A held memory is never expired, deleted or purged (those requests get 409 `legal_hold`). Holds on a whole division or agent: `/v1/legal-holds`.
         */
        put: {
            parameters: {
                query?: {
                    divisionId?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        hold: boolean;
                        reason?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId?: string | null;
                            /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                            checksum?: string;
                            /** Format: date-time */
                            createdAt?: string;
                            divisionId?: string;
                            embedding?: {
                                dimensions?: number;
                                model?: string;
                                version?: string;
                            } | null;
                            expiresAt?: string | null;
                            /** Format: uuid */
                            id?: string;
                            kind?: string;
                            legalHold?: boolean;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            namespace?: string;
                            /** Format: date-time */
                            occurredAt?: string | null;
                            piiFlags?: string[];
                            redacted?: boolean;
                            sequence?: number | null;
                            sessionId?: string | null;
                            /** @enum {string} */
                            status?: "pending" | "indexed" | "failed";
                            /** @description The newer memory that replaced this one */
                            supersededBy?: string | null;
                            tags?: string[];
                            /** @description Redacted for callers without pii:read */
                            text?: string;
                            /** Format: date-time */
                            updatedAt?: string;
                            version?: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Store up to 1,000 memories at once (all or nothing)
         * @description All or nothing: when any item is invalid the whole batch is refused, the error names the item (e.g. `items[3].text`), and nothing is written.
         */
        post: {
            parameters: {
                query?: {
                    /** @description Answer once indexed (or after WAIT_TIMEOUT_MS). */
                    wait?: boolean;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        divisionId?: string;
                        items: {
                            /** @description A registered agent of the division. */
                            agentId?: string;
                            /**
                             * Format: date-time
                             * @description null: never expires; absent: the division's default TTL
                             */
                            expiresAt?: string | null;
                            /** @description Defaults to "note". */
                            kind?: string;
                            metadata?: {
                                [key: string]: unknown;
                            };
                            /** @description `name` or `name@version` of the vector */
                            model?: string;
                            /** @description Defaults to "default". */
                            namespace?: string;
                            /**
                             * Format: date-time
                             * @description When the remembered thing happened (ISO 8601), distinct from createdAt
                             */
                            occurredAt?: string;
                            /** @description PII categories the caller adds to those detected (email, phone, card, iban are detected) */
                            piiFlags?: string[];
                            /** @description Place in the session (needs sessionId); default: after the session's last memory */
                            sequence?: number;
                            /** @description The conversation, thread or document the memory belongs to (same rules as other ids) */
                            sessionId?: string;
                            /** @description Older memories of the division this one replaces: search skips them unless includeSuperseded; they stay readable by id */
                            supersedes?: string[];
                            tags?: string[];
                            /** @description The memory. Empty or whitespace-only text is refused. */
                            text: string;
                            /** @description A precomputed embedding; needs `model`. Nothing is embedded: the queued job only puts it in the vector index. */
                            vector?: number[];
                        }[];
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                agentId?: string | null;
                                /** @description SHA-256 of the normalised text the caller sees (the redacted text when `redacted`) */
                                checksum?: string;
                                /** Format: date-time */
                                createdAt?: string;
                                divisionId?: string;
                                embedding?: {
                                    dimensions?: number;
                                    model?: string;
                                    version?: string;
                                } | null;
                                expiresAt?: string | null;
                                /** Format: uuid */
                                id?: string;
                                kind?: string;
                                legalHold?: boolean;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                namespace?: string;
                                /** Format: date-time */
                                occurredAt?: string | null;
                                piiFlags?: string[];
                                redacted?: boolean;
                                sequence?: number | null;
                                sessionId?: string | null;
                                /** @enum {string} */
                                status?: "pending" | "indexed" | "failed";
                                /** @description The newer memory that replaced this one */
                                supersededBy?: string | null;
                                tags?: string[];
                                /** @description Redacted for callers without pii:read */
                                text?: string;
                                /** Format: date-time */
                                updatedAt?: string;
                                version?: number;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/memories/import": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Bulk import memories from NDJSON (streamed, COPY)
         * @description The body is NDJSON (`application/x-ndjson`): one memory per line, with the fields of a `POST /v1/memories/batch` item (`text`, `vector` + `model`, `sessionId`, `sequence`, `occurredAt`, …). Lines are read as they arrive, checked one by one, and written with COPY every IMPORT_CHUNK_LINES lines, each chunk in one transaction. By default bad lines are reported by number and skipped (200 with the report); with `atomic=true` any bad line rolls everything back (422 `validation_failed`, fields `lines[N].field`). With `Idempotency-Key`, sending the same body again with the same key skips the chunks already written (`replayed`) and writes the rest: an interrupted import resumes. Bodies over MAX_IMPORT_BYTES stop with 413.
         */
        post: {
            parameters: {
                query: {
                    /** @description All or nothing: any bad line rolls the whole import back (422) and nothing is written */
                    atomic?: boolean;
                    divisionId: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            divisionId: string;
                            /** @description the first 1,000 refused lines, in order */
                            errors: {
                                /** @description the stable error code the same item gets from POST /v1/memories */
                                code: string;
                                /** @description the field at fault within the line ("" for the whole line) */
                                field: string;
                                /** @description 1-based line number in the body */
                                line: number;
                                message: string;
                            }[];
                            errorsTruncated: boolean;
                            /** @description lines refused */
                            failed: number;
                            /** @description memories written by this request */
                            imported: number;
                            /** @description lines read */
                            lines: number;
                            /** @description memories of chunks an earlier request with the same Idempotency-Key had written */
                            replayed: number;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/reembed": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List re-embedding runs, newest first */
        get: {
            parameters: {
                query?: {
                    divisionId?: string;
                    limit?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            items?: {
                                createdAt?: string;
                                divisionId?: string;
                                /** @description Memories with a vector of the target model */
                                done?: number;
                                /** @description Texts sent to the embedder so far */
                                embedded?: number;
                                error?: string | null;
                                finishedAt?: string | null;
                                /** @description The division's model when the run was requested */
                                fromModel?: string | null;
                                /** Format: uuid */
                                id?: string;
                                /** @description Target model, `name@version` */
                                model?: string;
                                /** @description done / total; 1 once the division switched */
                                progress?: number;
                                requestedBy?: string;
                                startedAt?: string | null;
                                /** @enum {string} */
                                status?: "queued" | "running" | "completed" | "failed" | "cancelled";
                                /** @description Live memories of the division (counted now and then) */
                                total?: number;
                                updatedAt?: string;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        /**
         * Re-embed a division's memories with another model
         * @description Queues a run that embeds every live memory of the division with `model` in the background (throttled, resumable). Search keeps using the current model until every memory has a vector of the new one, then the division switches in one transaction. 409 when the division already uses the model or a run is under way.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @description Defaults to "default" (or the caller's only division) */
                        divisionId?: string;
                        /** @description The model to move to, `name@version`: the configured one, the built-in `use-lite@0.2.0`, or one of EMBEDDING_MODELS_FILE */
                        model: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            divisionId?: string;
                            /** @description Memories with a vector of the target model */
                            done?: number;
                            /** @description Texts sent to the embedder so far */
                            embedded?: number;
                            error?: string | null;
                            finishedAt?: string | null;
                            /** @description The division's model when the run was requested */
                            fromModel?: string | null;
                            /** Format: uuid */
                            id?: string;
                            /** @description Target model, `name@version` */
                            model?: string;
                            /** @description done / total; 1 once the division switched */
                            progress?: number;
                            requestedBy?: string;
                            startedAt?: string | null;
                            /** @enum {string} */
                            status?: "queued" | "running" | "completed" | "failed" | "cancelled";
                            /** @description Live memories of the division (counted now and then) */
                            total?: number;
                            updatedAt?: string;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/reembed/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Read a re-embedding run (status and progress) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            divisionId?: string;
                            /** @description Memories with a vector of the target model */
                            done?: number;
                            /** @description Texts sent to the embedder so far */
                            embedded?: number;
                            error?: string | null;
                            finishedAt?: string | null;
                            /** @description The division's model when the run was requested */
                            fromModel?: string | null;
                            /** Format: uuid */
                            id?: string;
                            /** @description Target model, `name@version` */
                            model?: string;
                            /** @description done / total; 1 once the division switched */
                            progress?: number;
                            requestedBy?: string;
                            startedAt?: string | null;
                            /** @enum {string} */
                            status?: "queued" | "running" | "completed" | "failed" | "cancelled";
                            /** @description Live memories of the division (counted now and then) */
                            total?: number;
                            updatedAt?: string;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/reembed/{id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Cancel a run that has not finished
         * @description The division keeps its model. Vectors computed so far are kept: asking for the same model again continues from them.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            createdAt?: string;
                            divisionId?: string;
                            /** @description Memories with a vector of the target model */
                            done?: number;
                            /** @description Texts sent to the embedder so far */
                            embedded?: number;
                            error?: string | null;
                            finishedAt?: string | null;
                            /** @description The division's model when the run was requested */
                            fromModel?: string | null;
                            /** Format: uuid */
                            id?: string;
                            /** @description Target model, `name@version` */
                            model?: string;
                            /** @description done / total; 1 once the division switched */
                            progress?: number;
                            requestedBy?: string;
                            startedAt?: string | null;
                            /** @enum {string} */
                            status?: "queued" | "running" | "completed" | "failed" | "cancelled";
                            /** @description Live memories of the division (counted now and then) */
                            total?: number;
                            updatedAt?: string;
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/search": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Find memories by meaning and by words
         * @description `hybrid` (default) fuses the vector and BM25 keyword rankings by their normalised scores; `vector` and `keyword` use one retriever. Memories of a session are found with the words and meaning of their neighbouring turns too; hits return their own text. Filters: namespace, agentId, kind, tags (all must match), metadata (top-level equality), created-at range. `pending` counts matching memories not yet searchable by meaning.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        agentId?: string;
                        /** Format: date-time */
                        createdAfter?: string;
                        /** Format: date-time */
                        createdBefore?: string;
                        divisionId?: string;
                        /** @description Return with each hit up to `before`/`after` neighbouring memories of its session (redacted like the hit) */
                        expand?: {
                            /** @default 0 */
                            after?: number;
                            /** @default 0 */
                            before?: number;
                        };
                        /** @description Pseudo-relevance feedback: also search for the words that weigh most in the best keyword hits (default: the service setting, off unless SEARCH_FEEDBACK=on) */
                        feedback?: boolean;
                        /**
                         * @description Also find memories a newer one superseded
                         * @default false
                         */
                        includeSuperseded?: boolean;
                        /** @default 10 */
                        k?: number;
                        kind?: string;
                        /** @description Top-level equality on metadata keys */
                        metadata?: {
                            [key: string]: unknown;
                        };
                        /**
                         * @default hybrid
                         * @enum {string}
                         */
                        mode?: "hybrid" | "vector" | "keyword";
                        namespace?: string;
                        /**
                         * Format: date-time
                         * @description occurredAt at or after
                         */
                        occurredAfter?: string;
                        /**
                         * Format: date-time
                         * @description occurredAt before
                         */
                        occurredBefore?: string;
                        query?: string;
                        /** @description The conversation, thread or document the memory belongs to (same rules as other ids) */
                        sessionId?: string;
                        tags?: string[];
                        vector?: number[];
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            hits?: {
                                agentId?: string | null;
                                /** @description With `expand`: the neighbouring memories of the same session, in session order */
                                context?: {
                                    after?: {
                                        agentId?: string | null;
                                        createdAt?: string;
                                        id?: string;
                                        occurredAt?: string | null;
                                        piiFlags?: string[];
                                        redacted?: boolean;
                                        sequence?: number | null;
                                        text?: string;
                                    }[];
                                    before?: {
                                        agentId?: string | null;
                                        createdAt?: string;
                                        id?: string;
                                        occurredAt?: string | null;
                                        piiFlags?: string[];
                                        redacted?: boolean;
                                        sequence?: number | null;
                                        text?: string;
                                    }[];
                                };
                                createdAt?: string;
                                id?: string;
                                keywordScore?: number;
                                kind?: string;
                                metadata?: {
                                    [key: string]: unknown;
                                };
                                namespace?: string;
                                occurredAt?: string | null;
                                piiFlags?: string[];
                                score?: number;
                                sequence?: number | null;
                                sessionId?: string | null;
                                supersededBy?: string | null;
                                tags?: string[];
                                text?: string;
                                vectorScore?: number;
                            }[];
                            mode?: string;
                            /** @description Matching memories not yet searchable by meaning */
                            pending?: number;
                            timings?: {
                                embedMs?: number;
                                totalMs?: number;
                            };
                        };
                    };
                };
                /** @description Default Response */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
                /** @description Default Response */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code?: string;
                            detail?: string;
                            errors?: {
                                field?: string;
                                in?: string;
                                message?: string;
                            }[];
                            instance?: string;
                            requestId?: string;
                            status?: number;
                            title?: string;
                            type?: string;
                        };
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: never;
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
