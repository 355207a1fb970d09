/** Checks REST answers against the OpenAPI document a node serves (the schema of route and status). */
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { getJson } from "./node";

type Doc = {
  paths: Record<
    string,
    { get: { responses: Record<string, { content?: { "application/json": { schema: object } } }> } }
  >;
  components: { schemas: Record<string, object> };
};

/** Returns the validation problems of an answer (empty when it matches the document). */
export async function openApiChecker(
  baseUrl: string,
): Promise<(route: string, status: number, body: unknown) => string[]> {
  const doc = (await getJson(`${baseUrl}/api/openapi.json`)).body as Doc;
  const ajv = new Ajv2020({ strict: false });
  addFormats(ajv);
  return (route, status, body) => {
    const spec = doc.paths[route]?.get.responses[String(status)];
    if (spec === undefined) return [`${route} does not document status ${status}`];
    const schema = spec.content?.["application/json"].schema;
    if (schema === undefined) return [];
    const validate = ajv.compile({ ...schema, components: doc.components });
    return validate(body)
      ? []
      : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
  };
}
