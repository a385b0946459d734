/** One line of CMake's build output that carries a progress figure. */
export interface CmakeProgress {
  /** 0..100: Makefiles print it as `[ 42%]`; Ninja as `[12/345]`, turned into a percentage here. */
  percent: number;
  /** What the line says after the figure: "Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o". */
  message: string;
  /** compile: a source file; link: a library or program; built: a target finished; other: anything else. */
  action: "compile" | "link" | "built" | "other";
  /** The CMake target the line is about ("llama", "ggml-base", "llama-server"), when it names one. */
  target?: string;
}

const MAKE_PROGRESS = /^\[\s*(\d{1,3})%\]\s+(.*)$/;
const NINJA_PROGRESS = /^\[(\d+)\/(\d+)\]\s+(.*)$/;

/**
 * Reads the progress out of one line of `cmake --build` output, or undefined for a line without one
 * (compiler warnings, `--` configure lines, make's "Entering directory"). Pure, so it is tested on
 * real lines of a llama.cpp build.
 */
export function parseCmakeProgress(line: string): CmakeProgress | undefined {
  const text = line.trim();
  let percent: number;
  let message: string;
  const make = MAKE_PROGRESS.exec(text);
  if (make) {
    percent = Number(make[1]);
    message = make[2] ?? "";
  } else {
    const ninja = NINJA_PROGRESS.exec(text);
    if (!ninja) return undefined;
    const total = Number(ninja[2]);
    if (total <= 0) return undefined;
    percent = Math.floor((Number(ninja[1]) / total) * 100);
    message = ninja[3] ?? "";
  }
  if (percent > 100) return undefined;
  const progress: CmakeProgress = { percent, message, action: "other" };
  const built = /^Built target (\S+)/.exec(message);
  if (built) {
    progress.action = "built";
    progress.target = built[1];
  } else if (/^(Building|Compiling)\b/.test(message) || /\.(c|cc|cpp|cu|m|mm)\.o\b/.test(message)) {
    progress.action = "compile";
    const dir = /CMakeFiles\/([^/\s]+)\.dir\//.exec(message);
    if (dir) progress.target = dir[1];
  } else if (/^Linking\b/.test(message)) {
    progress.action = "link";
    const file = /\s(\S+)$/.exec(message)?.[1]?.split("/").pop();
    if (file) progress.target = file.replace(/^lib(.+)\.(a|so|dylib)$/, "$1");
  }
  return progress;
}
