// @restatedev/restate-sdk 1.17 calls Promise.withResolvers (Node >= 22);
// this machine has Node 20. Imported first, before the SDK.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
