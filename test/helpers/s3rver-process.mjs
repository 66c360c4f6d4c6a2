// An S3-protocol server (s3rver) in a process of its own, so that tests measure only their own
// memory and talk to it over a real socket as to any S3 store. Arguments: directory, bucket.
// Sends `{ port }` to the parent once listening; exits when the parent goes away.
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const { port } = await server.run();
process.send?.({ port });
process.on('disconnect', () => {
  server.close().finally(() => process.exit(0));
});
