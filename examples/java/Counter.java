/* Counter.java -- a Java process sharing an shmfs counter with Python, the
 * shell and C, with the JDK only (no JNI, no library).
 *
 * It maps the counter's binary view MNT/.raw/NAME with
 * FileChannel.map(READ_WRITE) -- MAP_SHARED, so it shares the very bytes
 * every other process maps -- and adds 1 to it N times, each time holding
 * FileChannel.lock().  That is an fcntl(F_SETLKW) lock, and shmfs keeps one
 * lock per object for flock and fcntl on either view, so the increments
 * exclude Python's get_lock() (examples/python/shmfs.py), `flock MNT/NAME`
 * from a shell, and the daemon's atomic add/sub (ioctl) waits for them.
 * The type is checked first through the user.shmfs.type xattr, which Java
 * reads as the user-defined attribute "shmfs.type".
 *
 * Usage: java Counter MNT NAME N      (NAME must be an i64 object)
 *
 * Against a mount at /tmp/exmnt (started with: build/fs/shmfs /tmp/exmnt):
 *
 *   $ javac -d /tmp/classes examples/java/Counter.java
 *   $ echo 0 > /tmp/exmnt/counter                # the first write types it: i64
 *   $ java -cp /tmp/classes Counter /tmp/exmnt counter 100000 &
 *   $ flock /tmp/exmnt/counter -c 'cat /tmp/exmnt/counter; sleep 1; cat /tmp/exmnt/counter'
 *   15266
 *   15266
 *   $ wait
 *   java 16187 added 100000 to /tmp/exmnt/counter under FileChannel.lock(), now 100000
 *   $ cat /tmp/exmnt/counter
 *   100000
 */
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserDefinedFileAttributeView;

public final class Counter {
    /** The object's shmfs type, from its user.shmfs.type xattr. */
    static String shmfsType(Path text) throws IOException {
        UserDefinedFileAttributeView view =
            Files.getFileAttributeView(text, UserDefinedFileAttributeView.class);
        ByteBuffer buf = ByteBuffer.allocate(view.size("shmfs.type"));
        view.read("shmfs.type", buf);
        buf.flip();
        return StandardCharsets.UTF_8.decode(buf).toString();
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: java Counter MNT NAME N");
            System.exit(2);
        }
        Path text = Paths.get(args[0], args[1]);
        Path raw = Paths.get(args[0], ".raw", args[1]);
        long n = Long.parseLong(args[2]);

        String type = shmfsType(text);
        if (!type.equals("i64")) {
            System.err.println("Counter: " + text + " is " + type + ", not i64");
            System.exit(1);
        }
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ,
                                               StandardOpenOption.WRITE)) {
            // The binary view is native byte order, like a C int64_t.
            MappedByteBuffer counter = ch.map(FileChannel.MapMode.READ_WRITE, 0, 8);
            counter.order(ByteOrder.nativeOrder());
            for (long i = 0; i < n; i++) {
                try (FileLock lock = ch.lock()) {
                    counter.putLong(0, counter.getLong(0) + 1);
                }
            }
            System.out.println("java " + ProcessHandle.current().pid() + " added " + n
                               + " to " + text + " under FileChannel.lock(), now "
                               + counter.getLong(0));
        }
    }
}
