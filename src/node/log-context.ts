/**
 * A Moleculer middleware that logs failed action calls with their context — request id, action,
 * caller node and, when the call names one, the symbol — so that a JSON log line can be traced back
 * to the request (and, with tracing on, to its trace) that caused it. Client mistakes (4xx) are the
 * client's business and are not logged.
 */
import type { Context, Middleware } from "moleculer";
import { ERR_WRONG_OWNER } from "../errors";

interface ActionLike {
  name: string;
  handler: (ctx: Context) => Promise<unknown>;
}

export function logContextMiddleware(): Middleware {
  return {
    name: "LogContext",
    localAction(
      this: { logger?: unknown },
      next: (ctx: Context) => Promise<unknown>,
      action: ActionLike,
    ) {
      return async (ctx: Context): Promise<unknown> => {
        try {
          return await next(ctx);
        } catch (err: unknown) {
          const e = err as { code?: number; message?: string; type?: string };
          if ((e.code ?? 500) >= 500 || e.type === ERR_WRONG_OWNER) {
            const params = ctx.params as { symbol?: unknown; source?: unknown } | undefined;
            ctx.broker.logger.warn(
              {
                requestID: ctx.requestID,
                action: action.name,
                caller: ctx.nodeID,
                ...(typeof params?.symbol === "string" ? { symbol: params.symbol } : {}),
                ...(typeof params?.source === "string" ? { source: params.source } : {}),
                code: e.code,
                type: e.type,
              },
              e.message ?? String(err),
            );
          }
          throw err;
        }
      };
    },
  } as unknown as Middleware;
}
