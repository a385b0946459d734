import { createHash } from "node:crypto";
import { EMPTY_SHA256, signingKey, signRequest, uriEncodePath } from "@rbee/catalog-server";
import { describe, expect, it } from "vitest";

/**
 * The SigV4 signer against AWS's own published examples: if one of these fails, every request to a
 * real S3 would be refused with SignatureDoesNotMatch.
 */
describe("AWS Signature Version 4 (AWS's published examples)", () => {
  it("derives the documented signing key (secret wJalr...EXAMPLEKEY, 20120215, us-east-1, iam)", () => {
    const key = signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
    expect(key.toString("hex")).toBe("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  });

  const s3Example = {
    credentials: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
    now: new Date("2013-05-24T00:00:00Z"),
  };

  it("signs S3's documented GET Object example (Range: bytes=0-9)", () => {
    const headers = signRequest(
      {
        method: "GET",
        url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
        headers: { Range: "bytes=0-9" },
        payloadSha256: EMPTY_SHA256,
      },
      s3Example.credentials,
      "us-east-1",
      "s3",
      s3Example.now,
    );
    expect(headers.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    expect(headers["x-amz-date"]).toBe("20130524T000000Z");
  });

  it("signs S3's documented PUT Object example (a key with $, a signed payload, extra headers)", () => {
    const body = "Welcome to Amazon S3.";
    const headers = signRequest(
      {
        method: "PUT",
        url: new URL(`https://examplebucket.s3.amazonaws.com${uriEncodePath("/test$file.text")}`),
        headers: { Date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" },
        payloadSha256: createHash("sha256").update(body).digest("hex"),
      },
      s3Example.credentials,
      "us-east-1",
      "s3",
      s3Example.now,
    );
    expect(headers.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, " +
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
  });
});
