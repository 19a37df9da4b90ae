// Prints the ggml CPU backend variant node-llama-cpp's prebuilt binary loads on this machine
// (e.g. "zen4", "haswell"): the prebuilt ships one libggml-cpu-<variant>.so per instruction-set
// level and picks the best one the CPU supports at load time. The llama-server anchor is built
// with exactly that variant's instruction sets, so both sides run the same SIMD kernels.
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});
const maps = readFileSync("/proc/self/maps", "utf8");
const match = /libggml-cpu-([A-Za-z0-9_.]+)\.so/.exec(maps);
await llama.dispose();
if (match === null) {
    console.error("cpu-variant: node-llama-cpp loaded no libggml-cpu-<variant>.so (not a GGML_BACKEND_DL prebuilt?)");
    process.exit(1);
}
console.log(match[1]);
