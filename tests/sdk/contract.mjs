// The official SDK's marketplace calls against the emulator (tests/integration/test_official_sdk.py).
// Prints one JSON line: each call's outcome, with what the SDK parsed but never a token.
import { Vercel } from "@vercel/sdk";

const { EMULATOR_URL, EMULATOR_TOKEN, INSTALLATION_ID, RESOURCE_ID, CLIENT_SECRET } = process.env;
const vercel = new Vercel({ bearerToken: EMULATOR_TOKEN, serverURL: EMULATOR_URL });

// A validation failure as its issue paths and codes: the SDK's message can quote the raw answer.
function failure(error) {
  const issues = error?.cause?.issues ?? error?.issues ?? [];
  const found = issues.map((i) => `${i.path.join(".")}:${i.code}`);
  return { ok: false, error: error?.name ?? "Error", statusCode: error?.statusCode ?? null, issues: found };
}

async function outcome(call) {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return failure(error);
  }
}

const ids = { integrationConfigurationId: INSTALLATION_ID, resourceId: RESOURCE_ID };
const results = {};
results.getIntegrationResources = await outcome(() =>
  vercel.marketplace.getIntegrationResources({ integrationConfigurationId: INSTALLATION_ID }),
);
results.getIntegrationResource = await outcome(() => vercel.marketplace.getIntegrationResource(ids));
results.deleteIntegrationResource = await outcome(async () => {
  await vercel.marketplace.deleteIntegrationResource(ids);
  return null;
});
results.getAfterDelete = await outcome(() => vercel.marketplace.getIntegrationResource(ids));
results.rotateInstallationCredential = await outcome(async () => {
  const rotated = await vercel.marketplace.rotateInstallationCredential({
    integrationConfigurationId: INSTALLATION_ID,
    requestBody: { clientSecret: CLIENT_SECRET },
  });
  // The new token itself is left out.
  return { fields: Object.keys(rotated).sort(), tokenType: rotated.tokenType, expiresIn: rotated.expiresIn };
});
process.stdout.write(JSON.stringify(results) + "\n");
