/**
 * Ollama's `keep_alive`: how long the model stays loaded after the request, a duration string
 * ("5m", "1h30m", "-1") or seconds. Models here stay loaded while the server runs, for every
 * client, so any wish to keep one loaded is met. Zero is different: it asks to unload the model
 * now, which one client cannot do to a model others are using; it is refused, naming who can.
 */
import { InferFluxError } from '../../../errors.js';

/** A Go duration of zero: "0", "0s", "0m", "0.0h", "0h0m0s"... */
const ZERO_DURATION = /^(?:0+(?:\.0*)?(?:ns|us|µs|ms|s|m|h)?)+$/;

export function refuseUnload(keepAlive: string | number | undefined): void {
  if (keepAlive === undefined) return;
  const zero = typeof keepAlive === 'number' ? keepAlive === 0 : ZERO_DURATION.test(keepAlive.trim());
  if (!zero) return;
  throw new InferFluxError(
    'invalid_request',
    "'keep_alive' 0 asks to unload the model, which a client cannot do here: models stay loaded while the server runs, for every client. An operator unloads one with `inferctl admin models --unload ID` (DELETE /v1/admin/models/{id}).",
    { param: 'keep_alive' },
  );
}
